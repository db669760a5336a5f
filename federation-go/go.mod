module github.com/federation/federation-go

go 1.24.0

require (
	github.com/sony/gobreaker/v2 v2.4.0
	gopkg.in/yaml.v3 v3.0.1
)
