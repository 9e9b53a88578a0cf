package prometheus_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	echocacheprom "github.com/echocache/echocache/metrics/prometheus"
	"github.com/echocache/echocache/stores"
)

// remote is a memory store the cache does not know as in-process, so its
// calls are timed and can fail, like a networked store's.
type remote struct {
	stores.Store
	down atomic.Bool
}

func (r *remote) Get(ctx context.Context, key string) ([]byte, error) {
	if r.down.Load() {
		return nil, errors.New("connection refused")
	}
	return r.Store.Get(ctx, key)
}

func (r *remote) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if r.down.Load() {
		return nil, errors.New("connection refused")
	}
	return stores.GetMany(ctx, r.Store, keys)
}

func newRemote(t *testing.T) *remote {
	t.Helper()
	m, err := stores.NewMemory(stores.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &remote{Store: m}
}

func TestCollector(t *testing.T) {
	store := newRemote(t)
	cache, err := echocache.NewWithConfig(store, echocache.Config{
		BreakerThreshold: 1,
		Logger:           echocache.LoggerFunc(func(string, ...any) {}),
	})
	if err != nil {
		t.Fatal(err)
	}
	(*core.Cache)(cache).SetProbeInterval(time.Hour) // the breaker stays open
	reg := prom.NewRegistry()
	reg.MustRegister(echocacheprom.NewCollector(cache, echocacheprom.CollectorOpts{ConstLabels: prom.Labels{"cache": "app"}}))

	e := echo.New()
	e.Match([]string{http.MethodGet, http.MethodPost}, "/", func(c echo.Context) error {
		return c.String(http.StatusOK, "page")
	}, cache.Cached(time.Minute))
	do := func(method string) {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "/", nil))
		// The page is written after its response (to this store, which
		// the Cache takes for a networked one, in the background).
		if err := cache.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	do(http.MethodGet)  // miss
	do(http.MethodGet)  // hit
	do(http.MethodGet)  // hit
	do(http.MethodPost) // bypass
	store.down.Store(true)
	do(http.MethodGet) // error: the store fails, the breaker opens

	const want = `
# HELP echocache_lookups_total Lookups of the cache, by feature (page, value, memoize, fragment) and result (hit, miss, stale, bypass, error). Each lookup has one result: a lookup the store could not answer is error, not miss (echocache.Stats.Misses counts it as both, so Misses = miss + error).
# TYPE echocache_lookups_total counter
echocache_lookups_total{cache="app",feature="fragment",result="bypass"} 0
echocache_lookups_total{cache="app",feature="fragment",result="error"} 0
echocache_lookups_total{cache="app",feature="fragment",result="hit"} 0
echocache_lookups_total{cache="app",feature="fragment",result="miss"} 0
echocache_lookups_total{cache="app",feature="fragment",result="stale"} 0
echocache_lookups_total{cache="app",feature="memoize",result="bypass"} 0
echocache_lookups_total{cache="app",feature="memoize",result="error"} 0
echocache_lookups_total{cache="app",feature="memoize",result="hit"} 0
echocache_lookups_total{cache="app",feature="memoize",result="miss"} 0
echocache_lookups_total{cache="app",feature="memoize",result="stale"} 0
echocache_lookups_total{cache="app",feature="page",result="bypass"} 1
echocache_lookups_total{cache="app",feature="page",result="error"} 1
echocache_lookups_total{cache="app",feature="page",result="hit"} 2
echocache_lookups_total{cache="app",feature="page",result="miss"} 1
echocache_lookups_total{cache="app",feature="page",result="stale"} 0
echocache_lookups_total{cache="app",feature="value",result="bypass"} 0
echocache_lookups_total{cache="app",feature="value",result="error"} 0
echocache_lookups_total{cache="app",feature="value",result="hit"} 0
echocache_lookups_total{cache="app",feature="value",result="miss"} 0
echocache_lookups_total{cache="app",feature="value",result="stale"} 0
# HELP echocache_breaker_open 1 while the circuit breaker skips the store, else 0.
# TYPE echocache_breaker_open gauge
echocache_breaker_open{cache="app"} 1
# HELP echocache_bypasses_total Requests that did not consult the cache and results that were not stored, by reason.
# TYPE echocache_bypasses_total counter
echocache_bypasses_total{cache="app",reason="method"} 1
# HELP echocache_store_errors_total Store calls that failed or were skipped by the circuit breaker.
# TYPE echocache_store_errors_total counter
echocache_store_errors_total{cache="app"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"echocache_lookups_total", "echocache_breaker_open", "echocache_bypasses_total", "echocache_store_errors_total"); err != nil {
		t.Error(err)
	}

	// Every store call is in the histogram: the miss's read and write,
	// two hits, the failure.
	if got := testutil.CollectAndCount(reg, "echocache_store_call_duration_seconds"); got != 2 {
		t.Errorf("store call histogram has %d series; want 2 (ok and error)", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "echocache_store_call_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts[m.GetLabel()[1].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	if counts["ok"] != 4 || counts["error"] != 1 {
		t.Errorf("store calls observed by result = %v; want 4 ok, 1 error", counts)
	}
	problems, err := testutil.CollectAndLint(echocacheprom.NewCollector(cache, echocacheprom.CollectorOpts{}))
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// A memory store's fill and evictions are exported.
func TestCollectorMemoryStore(t *testing.T) {
	m, err := stores.NewMemory(stores.MemoryConfig{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cache := echocache.New(m)
	if err := echocache.Set(context.Background(), cache, "k", "v", time.Minute); err != nil {
		t.Fatal(err)
	}
	reg := prom.NewRegistry()
	reg.MustRegister(echocacheprom.NewCollector(cache, echocacheprom.CollectorOpts{}))
	const want = `
# HELP echocache_store_entries Entries an in-process store holds.
# TYPE echocache_store_entries gauge
echocache_store_entries 1
# HELP echocache_store_max_bytes The bound on echocache_store_bytes.
# TYPE echocache_store_max_bytes gauge
echocache_store_max_bytes 1.048576e+06
# HELP echocache_store_evictions_total Entries an in-process store evicted to make room.
# TYPE echocache_store_evictions_total counter
echocache_store_evictions_total 0
# HELP echocache_stores_total Entries written to the store.
# TYPE echocache_stores_total counter
echocache_stores_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"echocache_store_entries", "echocache_store_max_bytes", "echocache_store_evictions_total", "echocache_stores_total"); err != nil {
		t.Error(err)
	}
}

// The core packages do not depend on client_golang: only a program that
// imports this package links it.
func TestCoreHasNoPrometheusDependency(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps",
		"github.com/echocache/echocache/echocache",
		"github.com/echocache/echocache/stores",
		"github.com/echocache/echocache/pongotag").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "prometheus") {
			t.Errorf("echocache, stores or pongotag depends on %s", pkg)
		}
	}
	if !strings.Contains(string(out), "github.com/redis/go-redis/v9") {
		t.Errorf("go list -deps printed %q; want the packages' dependencies", out)
	}
}
