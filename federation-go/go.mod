module github.com/federation/federation-go

go 1.26

require github.com/sony/gobreaker/v2 v2.4.0
