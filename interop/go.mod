module github.com/flagkit/experiment/interop

go 1.25.0

replace github.com/flagkit/experiment => ../

require (
	github.com/amplitude/experiment-go-server v1.12.0
	github.com/flagkit/experiment v0.0.0-00010101000000-000000000000
	github.com/open-feature/go-sdk v1.18.0
	github.com/open-feature/go-sdk-contrib/providers/ofrep v0.1.7
)

require (
	github.com/amplitude/analytics-go v1.0.1 // indirect
	github.com/google/uuid v1.3.0 // indirect
	github.com/spaolacci/murmur3 v1.1.0 // indirect
	github.com/tmaxmax/go-sse v0.11.0 // indirect
	go.uber.org/mock v0.6.0 // indirect
)
