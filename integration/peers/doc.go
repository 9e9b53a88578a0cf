// Package peers benchmarks echocache's route middleware against other Echo
// page caches, on the same handler and the same request harness as
// echocache's own BenchmarkStatic and BenchmarkHit.
//
// It is a module of its own so that the peers it measures never enter
// echocache's dependencies. Run it with
//
//	cd integration/peers && go test -run '^$' -bench . -benchmem
//
// The peers:
//
//   - github.com/SporkHubr/echo-http-cache (an Echo port of
//     victorspringer/http-cache), with its memory adapter. It keys pages by
//     a 64-bit FNV hash of the URL and stores them with gob.
package peers
