package integration

// Failover tests: a Redis Cluster master, or the master of a Sentinel set,
// is killed with SIGKILL while clients keep requesting cached pages over
// real HTTP. Every request is answered (fail-open) within the store
// timeout; on a cluster, pages whose keys live on the other masters stay
// hits throughout; and the killed master's pages are hits again within
// 5 s of the promotion of its replica.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/servertest"
)

// Settings of the failover tests.
const (
	// failoverStoreTimeout is the Cache's store timeout: generous, so that
	// a loaded machine does not turn a healthy master's answers into
	// misses; a killed master is refused at once anyway.
	failoverStoreTimeout = time.Second
	// failoverRecovery is the longest a killed master's pages may stay
	// misses after the promotion of its replica.
	failoverRecovery = 5 * time.Second
	failoverClients  = 8
)

// pageRequest is one request of the load, as the client saw it.
type pageRequest struct {
	page   int
	at     time.Time // when the response was read
	took   time.Duration
	hit    bool
	status int
	body   string
	err    error
}

// pageLoad requests /page/0 ... /page/n-1 round-robin from several
// clients at once and records every request.
type pageLoad struct {
	base   string
	n      int
	client *http.Client

	mu   sync.Mutex
	reqs []pageRequest
	stop atomic.Bool
	wg   sync.WaitGroup
}

// pagesServer serves GET /page/:n, cached by c for an hour, whose body
// names the page and counts the handler's runs.
func pagesServer(t *testing.T, c *echocache.Cache) string {
	t.Helper()
	var runs atomic.Int64
	e := echo.New()
	e.GET("/page/:n", func(ec echo.Context) error {
		return ec.String(http.StatusOK, fmt.Sprintf("page %s #%d", ec.Param("n"), runs.Add(1)))
	}, c.Cached(time.Hour))
	ts := httptest.NewServer(e)
	t.Cleanup(ts.Close)
	return ts.URL
}

func startPageLoad(base string, n int) *pageLoad {
	l := &pageLoad{base: base, n: n, client: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: failoverClients},
	}}
	for g := range failoverClients {
		l.wg.Go(func() {
			for i := g; !l.stop.Load(); i++ {
				l.record(l.get(i % n))
			}
		})
	}
	return l
}

func (l *pageLoad) get(page int) pageRequest { return getPage(l.client, l.base, page) }

// getPage GETs base/page/<page> with client and records the request.
func getPage(client *http.Client, base string, page int) pageRequest {
	r := pageRequest{page: page}
	start := time.Now()
	resp, err := client.Get(fmt.Sprintf("%s/page/%d", base, page))
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		r.status, r.body, r.hit = resp.StatusCode, string(b), resp.Header.Get("X-Cache") == "HIT"
	}
	r.at, r.took, r.err = time.Now(), time.Since(start), err
	return r
}

func (l *pageLoad) record(r pageRequest) {
	l.mu.Lock()
	l.reqs = append(l.reqs, r)
	l.mu.Unlock()
}

// snapshot returns the requests answered so far.
func (l *pageLoad) snapshot() []pageRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

// finish stops the load and returns every request.
func (l *pageLoad) finish() []pageRequest {
	l.stop.Store(true)
	l.wg.Wait()
	l.client.CloseIdleConnections()
	return l.reqs
}

// firstHitAfter returns, for each page, the first hit at or after t.
func firstHitAfter(reqs []pageRequest, t time.Time) map[int]time.Time {
	out := map[int]time.Time{}
	for _, r := range reqs {
		if r.hit && !r.at.Before(t) {
			if first, ok := out[r.page]; !ok || r.at.Before(first) {
				out[r.page] = r.at
			}
		}
	}
	return out
}

// awaitRecovery waits until every page has been a hit since promoted, lets
// the load run a little longer, stops it and returns every request.
func (l *pageLoad) awaitRecovery(t *testing.T, promoted time.Time) []pageRequest {
	t.Helper()
	pollUntil(t, failoverRecovery+5*time.Second, "every page is a hit again after the promotion", func(context.Context) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(firstHitAfter(l.reqs, promoted)) == l.n
	})
	time.Sleep(200 * time.Millisecond) // a little load after the recovery; not an assertion
	return l.finish()
}

// duringOutage counts the requests answered between the kill and the
// promotion, and the misses among them.
func duringOutage(reqs []pageRequest, killed, promoted time.Time) (n, misses int) {
	for _, r := range reqs {
		if r.at.After(killed) && r.at.Before(promoted) {
			n++
			if !r.hit {
				misses++
			}
		}
	}
	return n, misses
}

// checkRecovered checks that each of pages was a hit again within
// failoverRecovery of promoted, and returns the longest wait.
func checkRecovered(t *testing.T, reqs []pageRequest, promoted time.Time, pages []int) time.Duration {
	t.Helper()
	hits := firstHitAfter(reqs, promoted)
	var slowest time.Duration
	for _, p := range pages {
		d := hits[p].Sub(promoted)
		slowest = max(slowest, d)
		assert.LessOrEqual(t, d, failoverRecovery, "page %d was a miss for %v after the promotion", p, d)
	}
	return slowest
}

// checkAnswered checks that every request was answered whole, with the
// page it asked for, within the bound.
func checkAnswered(t *testing.T, reqs []pageRequest, bound time.Duration) time.Duration {
	t.Helper()
	checkWhole(t, reqs)
	var worst time.Duration
	for _, r := range reqs {
		worst = max(worst, r.took)
	}
	assert.LessOrEqual(t, worst, bound, "the slowest request took %v; want at most %v (one store timeout per request, and the machine's own latency)", worst, bound)
	return worst
}

// checkWhole checks that every request was answered whole, with the page
// it asked for: a store that fails never fails a request.
func checkWhole(t *testing.T, reqs []pageRequest) {
	t.Helper()
	for _, r := range reqs {
		require.NoError(t, r.err, "GET /page/%d", r.page)
		require.Equal(t, http.StatusOK, r.status, "GET /page/%d: fail-open, never an error status", r.page)
		require.True(t, strings.HasPrefix(r.body, fmt.Sprintf("page %d #", r.page)), "GET /page/%d = %q: another page's body", r.page, r.body)
	}
}

// warmPages requests each page until it is a hit.
func warmPages(t *testing.T, l *pageLoad) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for p := range l.n {
		for !l.get(p).hit {
			require.True(t, time.Now().Before(deadline), "page %d is never a hit", p)
		}
	}
}

// replicated waits until the replicas of the redis-server at addr have
// its writes (WAIT).
func replicated(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	n, err := c.Wait(t.Context(), 1, 5000).Result()
	require.NoError(t, err)
	require.Positive(t, n, "no replica of %s has its writes", addr)
}

// pollUntil calls done every 10 ms until it returns true and returns when
// that was, or fails the test after limit.
func pollUntil(t *testing.T, limit time.Duration, what string, done func(context.Context) bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !done(t.Context()) {
		require.True(t, time.Now().Before(deadline), "%s: not within %v", what, limit)
		time.Sleep(10 * time.Millisecond)
	}
	return time.Now()
}

func failoverCache(t *testing.T, rawURL string) *echocache.Cache {
	t.Helper()
	c, err := echocache.NewWithConfig(openStore(t, rawURL), echocache.Config{
		StoreTimeout: failoverStoreTimeout,
		Logger:       quietLogger,
	})
	require.NoError(t, err)
	return c
}

// TestFailoverRedisCluster kills the master that holds some of the pages
// of a cluster of the test's own (cluster-require-full-coverage no, as the
// README recommends) under load.
func TestFailoverRedisCluster(t *testing.T) {
	cl := servertest.StartRedisCluster(t, "--cluster-require-full-coverage", "no")
	prefix := namespace("failover-cluster")
	c := failoverCache(t, "redis+cluster://"+strings.Join(cl.Addrs(), ",")+"/?prefix="+prefix)
	base := pagesServer(t, c)

	const pages = 24
	l := startPageLoad(base, pages)
	defer l.finish()
	warmPages(t, l)

	// The master of each page's key (the page key: echocache's "r:" +
	// "u" + escaped path + "?" + canonical query), as the cluster says.
	raw := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	defer raw.Close()
	masterOf := map[int]string{}
	for p := range pages {
		key := fmt.Sprintf("%sr:u/page/%d?", prefix, p)
		n, err := raw.Exists(t.Context(), key).Result()
		require.NoError(t, err)
		require.Equal(t, int64(1), n, "no page key %q: has echocache's key format changed?", key)
		m, _, err := cl.MasterOf(t.Context(), key)
		require.NoError(t, err)
		masterOf[p] = m.Addr()
	}
	victim, replicas, err := cl.MasterOf(t.Context(), fmt.Sprintf("%sr:u/page/0?", prefix))
	require.NoError(t, err)
	require.NotEmpty(t, replicas)
	var deadPages, healthyPages []int
	for p := range pages {
		if masterOf[p] == victim.Addr() {
			deadPages = append(deadPages, p)
		} else {
			healthyPages = append(healthyPages, p)
		}
	}
	require.NotEmpty(t, healthyPages, "every page on one master: %v", masterOf)
	for _, addr := range uniq(masterOf) {
		replicated(t, addr)
	}

	healthy := l.snapshot()
	victim.Kill()
	killed := time.Now()
	promoted := pollUntil(t, 30*time.Second, "replica promoted", func(ctx context.Context) bool {
		for _, r := range replicas {
			if isMaster(ctx, r.Addr()) {
				return true
			}
		}
		return false
	})
	reqs := l.awaitRecovery(t, promoted)
	worst := checkAnswered(t, reqs, requestBound(failoverStoreTimeout, healthy))
	healthyMisses := 0
	for _, r := range reqs {
		if r.at.After(killed) && slices.Contains(healthyPages, r.page) && !r.hit {
			healthyMisses++
		}
	}
	assert.Zero(t, healthyMisses, "requests for pages on the healthy masters missed while another master was down")
	outage, outageMisses := duringOutage(reqs, killed, promoted)
	slowest := checkRecovered(t, reqs, promoted, deadPages)
	t.Logf("cluster failover: %d requests, %d during the outage (%d misses); promotion %v after the kill; "+
		"the killed master's %d pages were hits again %v after the promotion (the last of them); slowest request %v",
		len(reqs), outage, outageMisses, promoted.Sub(killed).Round(time.Millisecond), len(deadPages), slowest.Round(time.Millisecond), worst.Round(time.Millisecond))
}

// quietRedis drops go-redis's own log lines (each refused dial of the
// killed master), which its global logger would print to stderr.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }

func uniq(m map[int]string) []string {
	var out []string
	for _, v := range m {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// TestFailoverRedisSentinel kills the master of a Sentinel set of the
// test's own under load.
func TestFailoverRedisSentinel(t *testing.T) {
	set := servertest.StartRedisSentinel(t)
	prefix := namespace("failover-sentinel")
	c := failoverCache(t, "redis+sentinel://"+strings.Join(set.Addrs(), ",")+"/"+set.Name+"?prefix="+prefix)
	base := pagesServer(t, c)

	const pages = 4
	l := startPageLoad(base, pages)
	defer l.finish()
	warmPages(t, l)
	old, err := set.MasterAddr(t.Context())
	require.NoError(t, err)
	replicated(t, old)

	healthy := l.snapshot()
	set.Master.Kill()
	killed := time.Now()
	promoted := pollUntil(t, 30*time.Second, "a sentinel announces a new master", func(ctx context.Context) bool {
		addr, err := set.MasterAddr(ctx)
		return err == nil && addr != old
	})
	reqs := l.awaitRecovery(t, promoted)
	worst := checkAnswered(t, reqs, requestBound(failoverStoreTimeout, healthy))
	outage, outageMisses := duringOutage(reqs, killed, promoted)
	var all []int
	for p := range pages {
		all = append(all, p)
	}
	slowest := checkRecovered(t, reqs, promoted, all)
	t.Logf("sentinel failover: %d requests, %d during the outage (%d misses); promotion %v after the kill; "+
		"every page was a hit again %v after the promotion; slowest request %v",
		len(reqs), outage, outageMisses, promoted.Sub(killed).Round(time.Millisecond), slowest.Round(time.Millisecond), worst.Round(time.Millisecond))
}
