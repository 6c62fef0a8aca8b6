module github.com/flagkit/experiment/bench/official

go 1.24.0

replace github.com/flagkit/experiment => ../..

require (
	github.com/amplitude/experiment-go-server v1.12.0
	github.com/flagkit/experiment v0.0.0-00010101000000-000000000000
)

require (
	github.com/agnivade/levenshtein v1.2.2 // indirect
	github.com/amplitude/analytics-go v1.0.1 // indirect
	github.com/google/uuid v1.3.0 // indirect
	github.com/hashicorp/golang-lru/v2 v2.0.7 // indirect
	github.com/spaolacci/murmur3 v1.1.0 // indirect
	github.com/tmaxmax/go-sse v0.11.0 // indirect
)
