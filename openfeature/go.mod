module github.com/flagkit/experiment/openfeature

go 1.26.0

require (
	github.com/flagkit/experiment v0.0.0-00010101000000-000000000000
	github.com/open-feature/go-sdk v1.20.0
	go.uber.org/goleak v1.3.0
)

require (
	github.com/agnivade/levenshtein v1.2.2 // indirect
	github.com/hashicorp/golang-lru/v2 v2.0.7 // indirect
	github.com/tmaxmax/go-sse v0.11.0 // indirect
	github.com/twmb/murmur3 v1.1.8 // indirect
	go.uber.org/mock v0.6.0 // indirect
)

// Development against the SDK in this repository; a release of this module
// pins a tagged github.com/flagkit/experiment instead.
replace github.com/flagkit/experiment => ../
