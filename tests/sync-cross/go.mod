module github.com/federation/sync-cross

go 1.26.7

require github.com/federation/federation-go v0.0.0

replace github.com/federation/federation-go => ../../federation-go
