package peers

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func testEnv(t *testing.T) Env {
	t.Helper()
	return Env{
		RedisURL:      os.Getenv("ECHOCACHE_REDIS_URL"),
		MemcachedAddr: os.Getenv("ECHOCACHE_MEMCACHED_ADDR"),
		Prefix:        fmt.Sprintf("peers-test-%d:", os.Getpid()),
	}
}

// TestSystems checks, for both page sizes, that every system answers with
// exactly the page and builds it as often as it should (once for a cache),
// so that the benchmark measures what its rows say.
func TestSystems(t *testing.T) {
	env := testEnv(t)
	for _, size := range Sizes {
		for _, sys := range Systems {
			t.Run(fmt.Sprintf("%s/%d", sys.Key, size), func(t *testing.T) {
				if !env.Has(sys.Store) {
					if os.Getenv("CI") == "true" {
						t.Fatalf("%s needs a %s server; run under scripts/with-servers.sh", sys.Key, sys.Store)
					}
					t.Skipf("no %s server; run under scripts/with-servers.sh", sys.Store)
				}
				client := &http.Client{}
				// A prefix of its own: a page's key holds the server's
				// host:port, which a later subtest's server may get again.
				env := env
				env.Prefix += fmt.Sprintf("%s-%d:", sys.Key, size)
				r, err := Start(sys, size, env)
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					client.CloseIdleConnections() // fasthttp's Shutdown waits for open connections
					if err := r.Close(); err != nil {
						t.Errorf("Close() = %v", err)
					}
				}()
				if _, err := Check(client, r.URL, sys, Page(size)); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestCheckFails checks that Check notices a system that builds the page
// more than once or answers with other bytes.
func TestCheckFails(t *testing.T) {
	env := testEnv(t)
	static, _ := Lookup("echo")
	tests := []struct {
		name string
		sys  System
		want []byte
	}{
		{"nok, the handler runs for every request", System{Key: "static-as-cache", Builds: once, start: static.start}, Page(2048)},
		{"nok, other bytes", static, append(Page(2047), '!')},
		{"nok, a shorter page", static, Page(2047)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &http.Client{}
			r, err := Start(tt.sys, 2048, env)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				client.CloseIdleConnections()
				r.Close()
			}()
			if _, err := Check(client, r.URL, tt.sys, tt.want); err == nil {
				t.Errorf("Check(%s) = nil; want an error", tt.name)
			}
		})
	}
}

func TestParseWrk(t *testing.T) {
	const out = `Running 4s test @ http://127.0.0.1:41234/page
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   530.21us  210.10us  12.20ms   91.00%
    Req/Sec    18.50k     1.20k   20.10k    75.00%
  Latency Distribution
     50%  487.00us
     75%  560.00us
     90%  700.00us
     99%    1.53ms
  73901 requests in 4.00s, 160.50MB read
Requests/sec:  18474.51
Transfer/sec:     40.12MB
`
	got, err := ParseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Sample{ReqPerSec: 18474.51, P50: 487 * time.Microsecond, P99: 1530 * time.Microsecond, Requests: 73901}
	if got != want {
		t.Errorf("ParseWrk() = %+v; want %+v", got, want)
	}

	withErrors := strings.Replace(out, "Requests/sec", "  Socket errors: connect 0, read 2, write 0, timeout 0\n  Non-2xx or 3xx responses: 7\nRequests/sec", 1)
	got, err = ParseWrk(withErrors)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Socket errors: connect 0, read 2, write 0, timeout 0; Non-2xx or 3xx responses: 7"; got.Errors != want {
		t.Errorf("ParseWrk().Errors = %q; want %q", got.Errors, want)
	}

	for _, bad := range []string{
		"",
		strings.Replace(out, "     99%    1.53ms\n", "", 1),
		strings.Replace(out, "1.53ms", "1.53", 1),
		strings.Replace(out, "18474.51", "many", 1),
	} {
		if _, err := ParseWrk(bad); err == nil {
			t.Errorf("ParseWrk(%.60q…) = nil error; want one", bad)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name, stat string
		want       time.Duration
		ok         bool
	}{
		{"ok, plain", "4242 (bench-peers) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 3 0 100 1000 200", 3250 * time.Millisecond, true},
		{"ok, a name with spaces and parentheses", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 1 1", 30 * time.Millisecond, true},
		{"nok, no name", "4242 S 1", 0, false},
		{"nok, too short", "4242 (x) S 1 2 3", 0, false},
		{"nok, not a number", "4242 (x) S 1 4242 4242 0 -1 0 0 0 0 0 x 75 0", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat(tt.stat)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseProcStat() = %v, %v; want %v, ok %t", got, err, tt.want, tt.ok)
			}
		})
	}
	if _, err := ProcCPU(os.Getpid()); err != nil {
		t.Errorf("ProcCPU(own pid) = %v", err)
	}
}

func TestWriteTable(t *testing.T) {
	static, _ := Lookup("echo")
	mem, _ := Lookup("echocache-memory")
	bare, _ := Lookup("go-redis")
	onRedis, _ := Lookup("echocache-redis")
	s := func(rps float64) Sample {
		return Sample{ReqPerSec: rps, P50: 500 * time.Microsecond, P99: 2 * time.Millisecond, Requests: 1000, CPU: 20 * time.Millisecond}
	}
	rows := []Row{
		{System: static, Size: 2048, Samples: []Sample{s(20000), s(10000), s(21000)}},
		{System: mem, Size: 2048, Samples: []Sample{s(19000), s(19500), s(5000)}},
		{System: bare, Size: 2048, Samples: []Sample{s(10000)}},
		{System: onRedis, Size: 2048, Samples: []Sample{s(9000), s(9600)}},
	}
	// Paired by round: the ratio within each round, not of the medians
	// (which here would be 0.70).
	drift, _ := Lookup("echo-hit-headers")
	rows = append(rows,
		Row{System: static, Size: 4096, Samples: []Sample{s(100), s(200), s(300)}},
		Row{System: drift, Size: 4096, Samples: []Sample{s(95), s(190), s(140)}})
	rows[3].Samples[1].Errors = "Non-2xx or 3xx responses: 3"
	rows[3].Builds = 2
	var b strings.Builder
	if err := WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| 2 KiB | `github.com/labstack/echo/v4` | static Echo handler (the limit) | 20,000 | 500 µs | 2.00 ms | 20.0 | 1.00 | (limit) |",
		"| 2 KiB | `github.com/echocache/echocache` | route cache, memory store | 19,000 | 500 µs | 2.00 ms | 20.0 | 0.95 | 0.95 |",
		"| 2 KiB | `github.com/echocache/echocache` | route cache, redis store | 9,300 | 500 µs | 2.00 ms | 20.0 | 0.47 | 0.93 |",
		"| 4 KiB | `github.com/labstack/echo/v4` | static Echo handler that also writes the four headers of a hit (Age, Cache-Status, ETag, X-Cache) | 140 | 500 µs | 2.00 ms | 20.0 | 0.95 | 0.95 |",
		"- echocache-redis, 2 KiB, round 2: Non-2xx or 3xx responses: 3",
		"- echocache-redis, 2 KiB: the handler built the page 2 times (want 1)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("WriteTable() lacks %q; wrote:\n%s", want, b.String())
		}
	}
}
