package stores_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/rendezvous"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// startPool starts n memcached servers of the test's own.
func startPool(t *testing.T, n int, extra ...string) ([]*servertest.Server, []string) {
	t.Helper()
	srvs := make([]*servertest.Server, n)
	addrs := make([]string, n)
	for i := range srvs {
		srvs[i] = servertest.StartMemcached(t, extra...)
		addrs[i] = srvs[i].Addr()
	}
	return srvs, addrs
}

// itemCount returns the number of items a server holds ("stats"
// curr_items).
func itemCount(t *testing.T, addr string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = conn.Write([]byte("stats\r\n"))
	require.NoError(t, err)
	r := bufio.NewReader(conn)
	n := -1
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimSpace(line)
		if line == "END" {
			return n
		}
		if v, ok := strings.CutPrefix(line, "STAT curr_items "); ok {
			n, err = strconv.Atoi(v)
			require.NoError(t, err)
		}
	}
}

// TestMemcachedPoolJoinAndLeave writes 100,000 keys through a store on
// three servers, then reads them through a store on the same three and a
// fourth, and through one on two of them: a server joining takes at most
// 30 % of the keys and every key that stays on its server stays readable
// (its generation is untouched); a server leaving moves only its own
// keys. Each server's share is within ±15 % of even.
func TestMemcachedPoolJoinAndLeave(t *testing.T) {
	const n = 100_000
	ctx := t.Context()
	_, addrs := startPool(t, 4)
	prefix := memcachedPrefix(t)
	three := newMemcached(t, stores.MemcachedConfig{Servers: addrs[:3], Prefix: prefix})
	keys := manyKeys("GET /items/", n)
	for start := 0; start < n; start += 10_000 {
		items := make(map[string][]byte, 10_000)
		for _, k := range keys[start : start+10_000] {
			items[k] = []byte("v")
		}
		require.NoError(t, three.SetMany(ctx, items, 0))
	}
	for _, a := range addrs[:3] {
		share := itemCount(t, a) - 1 // less the server's generation
		dev := float64(share)/(n/3.0) - 1
		t.Logf("%s holds %d keys, %+.1f %% from even", a, share, 100*dev)
		assert.LessOrEqual(t, math.Abs(dev), 0.15, "server %s holds %d of %d keys; want within ±15 %% of even", a, share, n)
	}

	readable := func(s *stores.Memcached) map[string]bool {
		got := make(map[string]bool, n)
		for start := 0; start < n; start += 10_000 {
			vals, err := s.GetMany(ctx, keys[start:start+10_000])
			require.NoError(t, err)
			for k := range vals {
				got[k] = true
			}
		}
		return got
	}
	ring3, err := rendezvous.New(addrs[:3]...)
	require.NoError(t, err)

	four := newMemcached(t, stores.MemcachedConfig{Servers: addrs, Prefix: prefix})
	got := readable(four)
	ring4, err := rendezvous.New(addrs...)
	require.NoError(t, err)
	moved := 0
	for _, k := range keys {
		if ring4.Node(k) != ring3.Node(k) {
			moved++
			require.Equal(t, addrs[3], ring4.Node(k), "a key moved between two of the old servers")
			continue
		}
		require.True(t, got[k], "%q stayed on %s when a server joined, and is no longer readable", k, ring3.Node(k))
	}
	t.Logf("a 4th server took %.1f %% of the keys (ideal 25 %%)", 100*float64(moved)/n)
	assert.LessOrEqual(t, float64(moved)/n, 0.30, "adding a 4th server moved %d of %d keys", moved, n)
	assert.Equal(t, n-moved, len(got), "keys readable through the 4-server store")

	two := newMemcached(t, stores.MemcachedConfig{Servers: addrs[1:3], Prefix: prefix})
	got = readable(two)
	for _, k := range keys {
		if ring3.Node(k) != addrs[0] {
			require.True(t, got[k], "%q of %s is no longer readable when %s left", k, ring3.Node(k), addrs[0])
		}
	}
}

// poolLoad is concurrent traffic on a store over a pool, checking every
// answer against what the servers' states allow: keys on a server that is
// down may fail, with an error wrapping ErrNodeDown and never with a
// plain error or a wrong value; keys on the other servers must succeed.
type poolLoad struct {
	t     *testing.T
	s     *stores.Memcached
	ring  *rendezvous.Ring
	keys  []string
	value func(k string) []byte

	down sync.Map // addr -> true while a server is down or coming back
	lost sync.Map // addr -> true once a server was killed: its keys may miss

	ops  atomic.Int64
	mu   sync.Mutex
	errs []string
}

func (l *poolLoad) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 20 {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
}

func (l *poolLoad) isDown(k string) bool { _, ok := l.down.Load(l.ring.Node(k)); return ok }
func (l *poolLoad) isLost(k string) bool { _, ok := l.lost.Load(l.ring.Node(k)); return ok }

// checkErr checks the error of a call about key k.
func (l *poolLoad) checkErr(op, k string, err error) {
	switch {
	case err == nil || errors.Is(err, stores.ErrNotFound):
	case l.isDown(k):
		var ne *stores.NodeError
		if !errors.As(err, &ne) || ne.Node != l.ring.Node(k) {
			l.fail("%s(%q) on the server that is down: %v; want a *NodeError naming %s", op, k, err, l.ring.Node(k))
		}
	default:
		l.fail("%s(%q) on %s, which is up: %v", op, k, l.ring.Node(k), err)
	}
}

// run loops until stop ends: Get, Set, GetMany, Incr, paced at about 500
// calls a second per goroutine. The calls themselves are never cancelled.
func (l *poolLoad) run(stop context.Context, g int) {
	ctx := l.t.Context()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop.Done():
			return
		case <-tick.C:
		}
		k := l.keys[rand.IntN(len(l.keys))]
		switch i % 4 {
		case 0:
			v, err := l.s.Get(ctx, k)
			l.checkErr("Get", k, err)
			if err == nil && string(v) != string(l.value(k)) {
				l.fail("Get(%q) = %q; want %q", k, v, l.value(k))
			}
			if errors.Is(err, stores.ErrNotFound) && !l.isLost(k) && !l.isDown(k) {
				l.fail("Get(%q) missed; its server %s never went down", k, l.ring.Node(k))
			}
		case 1:
			l.checkErr("Set", k, l.s.Set(ctx, k, l.value(k), 0))
		case 2:
			batch := make([]string, 12)
			for j := range batch {
				batch[j] = l.keys[rand.IntN(len(l.keys))]
			}
			got, err := l.s.GetMany(ctx, batch)
			if err != nil && !errors.Is(err, stores.ErrNodeDown) {
				l.fail("GetMany: plain error %v while at most one server is down", err)
			}
			var ne *stores.NodeError
			if errors.As(err, &ne) {
				for _, k := range ne.Keys {
					if l.ring.Node(k) != ne.Node || !l.isDown(k) {
						l.fail("GetMany: NodeError for %s names %q of %s (down: %v)", ne.Node, k, l.ring.Node(k), l.isDown(k))
					}
				}
			}
			for _, k := range batch {
				v, ok := got[k]
				switch {
				case ok && string(v) != string(l.value(k)):
					l.fail("GetMany[%q] = %q; want %q", k, v, l.value(k))
				case !ok && !l.isDown(k) && !l.isLost(k):
					l.fail("GetMany left out %q of %s, which is up and never went down (error %v)", k, l.ring.Node(k), err)
				}
			}
		case 3:
			ck := "counter:" + strconv.Itoa(g) + ":" + k
			_, err := l.s.Incr(ctx, ck, 1)
			l.checkErr("Incr", ck, err)
		}
		l.ops.Add(1)
	}
}

// waitOps waits until the load has made n more calls.
func (l *poolLoad) waitOps(n int64) {
	l.t.Helper()
	start := l.ops.Load()
	require.Eventually(l.t, func() bool { return l.ops.Load()-start >= n }, 30*time.Second, 5*time.Millisecond, "the load made no progress")
}

// TestMemcachedPoolKillEachServer kills each of three servers in turn
// under concurrent load, on both protocols: while one is down, only its
// keys fail, as *NodeError, and GetMany returns what the others hold; its
// breaker opens; once it is restarted the store uses it again within a
// second, and its keys read as misses (it came back empty).
func TestMemcachedPoolKillEachServer(t *testing.T) {
	for _, protocol := range []string{stores.MemcachedBinary, stores.MemcachedASCII} {
		t.Run(protocol, func(t *testing.T) {
			srvs, addrs := startPool(t, 3)
			// A killed server refuses connections at once; the generous
			// Timeout only keeps a loaded machine from failing live calls.
			s := newMemcached(t, stores.MemcachedConfig{Servers: addrs, Protocol: protocol, Timeout: 5 * time.Second})
			ring, err := rendezvous.New(addrs...)
			require.NoError(t, err)
			l := &poolLoad{t: t, s: s, ring: ring, keys: manyKeys("key", 300), value: func(k string) []byte { return []byte("v:" + k) }}
			items := map[string][]byte{}
			for _, k := range l.keys {
				items[k] = l.value(k)
			}
			require.NoError(t, s.SetMany(t.Context(), items, 0))

			ctx, stop := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() { l.run(ctx, g) })
			}
			defer func() { stop(); wg.Wait() }()

			for i, srv := range srvs {
				l.waitOps(200)
				l.down.Store(addrs[i], true)
				l.lost.Store(addrs[i], true)
				srv.Kill()
				l.waitOps(400)
				require.Eventually(t, func() bool { return s.Servers()[i].Down }, 10*time.Second, 5*time.Millisecond, "the breaker of %s did not open", addrs[i])
				mine := ""
				for _, k := range l.keys {
					if ring.Node(k) == addrs[i] {
						mine = k
						break
					}
				}
				_, err := s.Get(t.Context(), mine)
				require.ErrorIs(t, err, stores.ErrNodeSkipped, "a key of the server that is down, once its breaker is open")

				require.NoError(t, srv.Restart())
				back := time.Now()
				for {
					_, err := s.Get(t.Context(), mine)
					if err == nil || errors.Is(err, stores.ErrNotFound) {
						break
					}
					require.Less(t, time.Since(back), 5*time.Second, "%s not used again 5s after its restart: %v", addrs[i], err)
					time.Sleep(5 * time.Millisecond)
				}
				took := time.Since(back)
				t.Logf("%s: used again %v after its restart", addrs[i], took.Round(time.Millisecond))
				assert.LessOrEqual(t, took, time.Second, "%s was used again %v after its restart; want within 1s", addrs[i], took)
				l.down.Delete(addrs[i])
				l.waitOps(200)
			}
			stop()
			wg.Wait()
			assert.Empty(t, l.errs, "wrong answers under load while servers were killed")
			assert.Positive(t, l.ops.Load())
		})
	}
}

// TestMemcachedPoolAllDown checks that when every server is down, errors
// are plain (not ErrNodeDown), so that echocache's breaker opens.
func TestMemcachedPoolAllDown(t *testing.T) {
	srvs, addrs := startPool(t, 3)
	s := newMemcached(t, stores.MemcachedConfig{Servers: addrs})
	keys := manyKeys("k", 30)
	for _, srv := range srvs {
		srv.Kill()
	}
	// Until every breaker is open, the error of a server may still be a
	// NodeError, the others looking up; afterwards, never.
	require.Eventually(t, func() bool {
		_, err := s.GetMany(t.Context(), keys)
		require.Error(t, err)
		for _, st := range s.Servers() {
			if !st.Down {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond)
	_, err := s.Get(t.Context(), "k")
	require.Error(t, err)
	assert.NotErrorIs(t, err, stores.ErrNodeDown, "every server is down: a plain error")
	got, err := s.GetMany(t.Context(), keys)
	require.Error(t, err)
	assert.NotErrorIs(t, err, stores.ErrNodeDown)
	assert.Nil(t, got)
	assert.NotErrorIs(t, s.Set(t.Context(), "k", []byte("v"), 0), stores.ErrNodeDown)
	assert.NotErrorIs(t, s.Clear(t.Context()), stores.ErrNodeDown)
}

// TestMemcachedRestartUsedWithinASecond kills a server under concurrent
// load, waits for its breaker to open and restarts it: a call for its keys
// succeeds within a second, and none fails after that. Each way of talking
// to memcached runs it on a server alone and, with "/clear", with a Clear
// while the server is down: the prober replays that Clear before using the
// server again (on a breaker that is still open), on one server and on a
// pool of two.
func TestMemcachedRestartUsedWithinASecond(t *testing.T) {
	kinds := []struct {
		name  string
		start func(t *testing.T) *servertest.Server
		cfg   func(addr ...string) stores.MemcachedConfig
	}{
		{"binary", func(t *testing.T) *servertest.Server { return servertest.StartMemcached(t) },
			func(a ...string) stores.MemcachedConfig { return stores.MemcachedConfig{Servers: a} }},
		{"ascii", func(t *testing.T) *servertest.Server { return servertest.StartMemcached(t) },
			func(a ...string) stores.MemcachedConfig {
				return stores.MemcachedConfig{Servers: a, Protocol: stores.MemcachedASCII}
			}},
		{"auth-ascii", func(t *testing.T) *servertest.Server { return servertest.StartMemcachedAuth(t) },
			func(a ...string) stores.MemcachedConfig {
				return stores.MemcachedConfig{Servers: a, Username: servertest.AuthUser, Password: servertest.AuthPass}
			}},
		{"sasl", func(t *testing.T) *servertest.Server { return servertest.StartMemcachedSASL(t) },
			func(a ...string) stores.MemcachedConfig {
				return stores.MemcachedConfig{Servers: a, Protocol: stores.MemcachedBinary, Username: servertest.AuthUser, Password: servertest.AuthPass}
			}},
	}
	for _, kind := range kinds {
		for _, mode := range []struct {
			name        string
			servers     int
			clearDuring bool
		}{{"", 1, false}, {"/clear", 1, true}, {"/pool-clear", 2, true}} {
			if mode.servers > 1 && strings.Contains(kind.name, "auth") {
				continue
			}
			t.Run(kind.name+mode.name, func(t *testing.T) {
				t.Parallel()
				srvs := make([]*servertest.Server, mode.servers)
				addrs := make([]string, mode.servers)
				for i := range srvs {
					srvs[i] = kind.start(t)
					addrs[i] = srvs[i].Addr()
				}
				cfg := kind.cfg(addrs...)
				cfg.Timeout = 5 * time.Second // see TestMemcachedPoolKillEachServer
				var answers atomic.Int32
				cfg.Logger = echoLikeLogger(func(format string, _ ...any) {
					if strings.Contains(format, "answers again") {
						answers.Add(1)
					}
				})
				s := newMemcached(t, cfg)
				key := "steady"
				if mode.servers > 1 {
					ring, err := rendezvous.New(addrs...)
					require.NoError(t, err)
					for _, k := range manyKeys("steady", 100) {
						if ring.Node(k) == addrs[0] {
							key = k
							break
						}
					}
				}
				restartUsedWithinASecond(t, s, srvs[0], key, mode.clearDuring)
				assert.Positive(t, answers.Load(), "logged that the server answers again")
			})
		}
	}
}

// restartUsedWithinASecond kills srv, the first server of s, under
// concurrent load on key (one of srv's), waits for its breaker to open,
// calls Clear when clearDuring is set, restarts srv and checks that a call
// succeeds within a second of the restart and that none fails after that.
func restartUsedWithinASecond(t *testing.T, s *stores.Memcached, srv *servertest.Server, key string, clearDuring bool) {
	ctx := t.Context()
	// Fill the pool: 16 concurrent calls leave 16 idle connections.
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for range 10 {
				assert.NoError(t, s.Set(ctx, "k"+strconv.Itoa(g), []byte("v"), 0))
			}
		})
	}
	wg.Wait()

	load := startRestartLoad(t, s, key, 1, 50*time.Millisecond, 0) // 20 requests a second
	srv.Kill()
	require.Eventually(t, func() bool { return s.Servers()[0].Down }, 10*time.Second, 5*time.Millisecond, "the breaker did not open")
	if clearDuring {
		require.Error(t, s.Clear(ctx), "Clear with a server down")
	}
	require.NoError(t, srv.Restart())
	load.usedAgain(t, time.Now())
	assert.False(t, s.Servers()[0].Down, "the restarted server's breaker is still open")
}

// TestMemcachedSlowServerSkipped checks that a server that answers, but
// always over half the store's Timeout, is treated like one that fails:
// its breaker opens and its keys fail at once as skipped, while the other
// server's keys are served; once it is quick again, it is used again.
func TestMemcachedSlowServerSkipped(t *testing.T) {
	_, addrs := startPool(t, 2)
	p := faultproxy.Start(t, addrs[0])
	servers := []string{p.Addr(), addrs[1]}
	s := newMemcached(t, stores.MemcachedConfig{Servers: servers, Timeout: 2 * time.Second})
	ring, err := rendezvous.New(servers...)
	require.NoError(t, err)
	var slowKey, fastKey string
	for _, k := range manyKeys("k", 100) {
		if ring.Node(k) == servers[0] && slowKey == "" {
			slowKey = k
		}
		if ring.Node(k) == servers[1] && fastKey == "" {
			fastKey = k
		}
	}
	ctx := t.Context()
	require.NoError(t, s.Set(ctx, slowKey, []byte("slow"), 0))
	require.NoError(t, s.Set(ctx, fastKey, []byte("fast"), 0))

	p.Delay(1200 * time.Millisecond) // over Timeout/2, under Timeout
	require.Eventually(t, func() bool {
		_, err := s.Get(ctx, slowKey) // slow, but answered until the breaker opens
		if err != nil {
			require.ErrorIs(t, err, stores.ErrNodeDown)
		}
		return s.Servers()[0].Down
	}, 15*time.Second, time.Millisecond, "a server slower than Timeout/2 on every call was not skipped")
	_, err = s.Get(ctx, slowKey)
	require.ErrorIs(t, err, stores.ErrNodeSkipped, "the slow server's keys are skipped, not waited for")
	v, err := s.Get(ctx, fastKey)
	require.NoError(t, err, "the other server is served")
	assert.Equal(t, "fast", string(v))

	p.Pass()
	require.Eventually(t, func() bool { return !s.Servers()[0].Down }, 10*time.Second, 5*time.Millisecond, "the server was not used again once quick")
	v, err = s.Get(ctx, slowKey)
	require.NoError(t, err)
	assert.Equal(t, "slow", string(v))
}

// TestMemcachedClearReachesServerThatWasDown checks that a Clear that
// could not reach a server returns a *NodeError for it, clears the
// others, and is replayed before that server serves its old entries
// again.
func TestMemcachedClearReachesServerThatWasDown(t *testing.T) {
	_, addrs := startPool(t, 2)
	p := faultproxy.Start(t, addrs[0])
	servers := []string{p.Addr(), addrs[1]}
	s := newMemcached(t, stores.MemcachedConfig{Servers: servers})
	ctx := t.Context()
	keys := manyKeys("k", 40)
	items := map[string][]byte{}
	for _, k := range keys {
		items[k] = []byte("old")
	}
	require.NoError(t, s.SetMany(ctx, items, 0))

	p.Drop()
	err := s.Clear(ctx)
	var ne *stores.NodeError
	require.ErrorAs(t, err, &ne, "Clear with one server unreachable")
	assert.Equal(t, servers[0], ne.Node)
	p.Pass()

	got, err := s.GetMany(ctx, keys)
	if err != nil {
		require.ErrorIs(t, err, stores.ErrNodeDown) // the breaker may still be open
	}
	assert.Empty(t, got, "entries read after a Clear (on the server that answered)")
	require.Eventually(t, func() bool { return !s.Servers()[0].Down }, 10*time.Second, 5*time.Millisecond)
	got, err = s.GetMany(ctx, keys)
	require.NoError(t, err)
	assert.Empty(t, got, "the server that missed the Clear serves its old entries again")
}

// TestMemcachedPoolEchocache runs echocache on a pool of three and kills
// each server in turn: memoized results and tagged pages whose keys (and
// version keys) live on the other servers keep being served from the
// cache; nothing fails. A result is cached when its function's version key
// and its own key are both on live servers, about 4 in 9 of them; the
// samples are large enough that a quarter is far below what placement
// gives (more than four standard deviations for the results).
func TestMemcachedPoolEchocache(t *testing.T) {
	srvs, addrs := startPool(t, 3)
	s := newMemcached(t, stores.MemcachedConfig{Servers: addrs, Timeout: 5 * time.Second})
	c, err := echocache.NewWithConfig(s, echocache.Config{StoreTimeout: 5 * time.Second, Logger: echocache.LoggerFunc(func(string, ...any) {})})
	require.NoError(t, err)
	ctx := t.Context()

	const funcs, args, pages = 60, 4, 90
	var runs [funcs]atomic.Int64
	memo := make([]*echocache.Memoized[int, string], funcs)
	for f := range memo {
		memo[f] = echocache.Memoize(c, "f"+strconv.Itoa(f), time.Hour, func(_ context.Context, a int) (string, error) {
			runs[f].Add(1)
			return fmt.Sprint(f, "/", a), nil
		})
	}
	var pageRuns atomic.Int64
	e := echo.New()
	e.GET("/page/:n", func(ec echo.Context) error {
		echocache.Tag(ec, "tag-"+ec.Param("n"))
		pageRuns.Add(1)
		return ec.String(http.StatusOK, "page "+ec.Param("n"))
	}, c.Cached(time.Hour))
	get := func(n int) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/page/"+strconv.Itoa(n), nil))
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "page "+strconv.Itoa(n), rec.Body.String())
		return rec
	}
	prime := func() {
		for f := range memo {
			for a := range args {
				v, err := memo[f].Get(ctx, a)
				require.NoError(t, err)
				require.Equal(t, fmt.Sprint(f, "/", a), v)
			}
		}
		for n := range pages {
			get(n)
		}
	}
	for i, srv := range srvs {
		prime()
		srv.Kill()
		cached := 0
		for f := range memo {
			for a := range args {
				before := runs[f].Load()
				v, err := memo[f].Get(ctx, a)
				require.NoError(t, err, "memoize fails open")
				require.Equal(t, fmt.Sprint(f, "/", a), v)
				if runs[f].Load() == before {
					cached++
				}
			}
		}
		hits := 0
		for n := range pages {
			if get(n).Header().Get("X-Cache") == "HIT" {
				hits++
			}
		}
		t.Logf("%s down: %d of %d memoized results and %d of %d tagged pages served from the cache", addrs[i], cached, funcs*args, hits, pages)
		assert.Greater(t, cached, funcs*args/4, "with %s down, memoized results of the other servers are still cached", addrs[i])
		assert.Greater(t, hits, pages/4, "with %s down, tagged pages of the other servers are still cached", addrs[i])
		require.NoError(t, srv.Restart())
		require.Eventually(t, func() bool { return !s.Servers()[i].Down }, 10*time.Second, 5*time.Millisecond)
	}
	assert.False(t, slices.ContainsFunc(s.Servers(), func(st stores.MemcachedServerStatus) bool { return st.Down }))
}

// TestMemcachedPendingClearBeforeExactWrites checks that a Clear that
// missed a server (whose breaker stayed closed: one failure) is replayed
// before the writes that read the server's generation themselves, not only
// before reads: an Incr after it starts from nothing and an Add finds the
// key free, on both protocols.
func TestMemcachedPendingClearBeforeExactWrites(t *testing.T) {
	for _, proto := range []string{stores.MemcachedBinary, stores.MemcachedASCII} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			_, addrs := startPool(t, 2)
			p := faultproxy.Start(t, addrs[0])
			servers := []string{p.Addr(), addrs[1]}
			s := newMemcached(t, stores.MemcachedConfig{Servers: servers, Protocol: proto})
			ring, err := rendezvous.New(servers...)
			require.NoError(t, err)
			var onVictim []string
			for _, k := range manyKeys("k", 100) {
				if ring.Node(k) == servers[0] {
					onVictim = append(onVictim, k)
				}
			}
			require.GreaterOrEqual(t, len(onVictim), 2)
			counter, added := onVictim[0], onVictim[1]
			ctx := t.Context()
			n, err := s.Incr(ctx, counter, 5)
			require.NoError(t, err)
			require.EqualValues(t, 5, n)
			ok, err := s.Add(ctx, added, []byte("old"), 0)
			require.NoError(t, err)
			require.True(t, ok)

			p.Drop()
			var ne *stores.NodeError
			require.ErrorAs(t, s.Clear(ctx), &ne, "Clear with one server unreachable")
			p.Pass()
			require.False(t, s.Servers()[0].Down, "one failure opened the breaker; the test needs it closed")

			n, err = s.Incr(ctx, counter, 1)
			require.NoError(t, err)
			assert.EqualValues(t, 1, n, "Incr after a Clear counts on from a cleared entry")
			ok, err = s.Add(ctx, added, []byte("new"), 0)
			require.NoError(t, err)
			assert.True(t, ok, "Add after a Clear finds a cleared entry")
		})
	}
}

// TestMemcachedFailedWriteRemovalOwed checks that the removal a failed
// write owes (see Failed writes in the package doc) is not lost when the
// write's failure opens the server's breaker, which then refuses the
// removal: it is made before the server is used again, so that the value
// the write was meant to replace is never read. One key by Set, others by
// SetMany, on both protocols.
func TestMemcachedFailedWriteRemovalOwed(t *testing.T) {
	for _, proto := range []string{stores.MemcachedBinary, stores.MemcachedASCII} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			srv := servertest.StartMemcached(t)
			p := faultproxy.Start(t, srv.Addr())
			s := newMemcached(t, stores.MemcachedConfig{Servers: []string{p.Addr()}, Protocol: proto})
			ctx := t.Context()
			many := map[string][]byte{"m1": []byte("old"), "m2": []byte("old")}
			require.NoError(t, s.Set(ctx, "k", []byte("old"), 0))
			require.NoError(t, s.SetMany(ctx, many, 0))

			p.Drop() // the server keeps what it holds; nothing reaches it
			_, err := s.Get(ctx, "other")
			require.Error(t, err)
			require.Error(t, s.Set(ctx, "k", []byte("new"), 0))
			require.Error(t, s.SetMany(ctx, map[string][]byte{"m1": []byte("new"), "m2": []byte("new")}, 0))
			require.True(t, s.Servers()[0].Down, "the failed writes opened the breaker")
			p.Pass()
			require.Eventually(t, func() bool { return !s.Servers()[0].Down }, 10*time.Second, 5*time.Millisecond, "the server was not used again")
			for _, k := range []string{"k", "m1", "m2"} {
				v, err := s.Get(ctx, k)
				if err == nil {
					t.Errorf("Get(%q) = %q after a failed write; want a miss", k, v)
				} else {
					require.ErrorIs(t, err, stores.ErrNotFound)
				}
			}
		})
	}
}
