module github.com/federation/federation-go

go 1.26
