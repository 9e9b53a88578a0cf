// Package peers measures echocache's route cache next to the limits it is
// held to and the other page caches a user would pick instead, each in a
// server process of its own on loopback, in front of the same handler
// writing the same bytes (2 KiB and 64 KiB), driven by wrk in interleaved
// rounds. Run it from the repository root with
//
//	make bench-peers
//
// which installs wrk (apt-get, as root), starts redis and memcached
// (scripts/with-servers.sh) and runs cmd/bench-peers; it prints one
// markdown table.
//
// It is a module of its own so that the peers it measures never enter
// echocache's dependencies. The rows (see Systems):
//
//   - github.com/labstack/echo/v4: the handler alone, uncached (the limit).
//   - github.com/echocache/echocache on its memory, redis and memcached stores.
//   - github.com/redis/go-redis/v9 and github.com/bradfitz/gomemcache: a
//     handler that reads the page with a bare GET (Get) and writes it, the
//     limit for a cache on that store.
//   - github.com/SporkHubr/echo-http-cache, with its memory adapter.
//   - github.com/victorspringer/http-cache, through echo.WrapMiddleware,
//     with its memory adapter, at v0.0.0-20240523143319-7d9f48f8ab91: the
//     module proxy refuses its 2026 commits.
//   - github.com/darkweak/souin v1.7.8 (v1.7.9 fails checksum verification):
//     its core handler (pkg/middleware) in an Echo middleware built the way
//     souin's Echo adapter builds it. The adapter's module,
//     github.com/darkweak/souin/plugins/echo, is not served by the module
//     proxy (no version of it is), and neither souin's storages plugin nor
//     github.com/darkweak/storages/otter passes checksum verification, so
//     it runs on souin's default in-memory storage.
//   - github.com/gofiber/fiber/v2 and its middleware/cache: a different
//     server (fasthttp), with its own static handler as the limit.
//
// Before measuring, and in TestSystems, every system is checked to answer
// with exactly the page and to build it once (the static handlers: once
// per request); after measuring, that the page was still built once, so
// every measured request was a hit.
package peers
