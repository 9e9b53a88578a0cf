package peers

import (
	"fmt"
	"net/http"
	"os"
	"testing"
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
