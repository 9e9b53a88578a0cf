package echocache

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/faultproxy"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// Two processes, A and B, share a store. A answers misses and writes their
// pages after the responses; B deletes each page as soon as its response
// has been received, while A's write of it is under way (held in a proxy
// between A and the store until B's deletes have returned). A's writes
// land after B's deletes, and B's second delete removes them: once both
// Caches are flushed, the pages are misses in both processes. Several
// pages are served and deleted at once.
func TestDeletePageWriteUnderWayInOtherProcess(t *testing.T) {
	const pages = 8
	ctx := context.Background()
	for _, backend := range []string{"redis", "memcached"} {
		t.Run(backend, func(t *testing.T) {
			var raw [6]byte
			_, _ = rand.Read(raw[:])
			prefix := "redelete-" + hex.EncodeToString(raw[:]) + ":"
			var direct *url.URL
			switch backend {
			case "redis":
				u, err := url.Parse(servertest.Redis(t))
				require.NoError(t, err)
				q := u.Query()
				for _, p := range []string{"dial_timeout", "read_timeout", "write_timeout"} {
					q.Set(p, "5s")
				}
				u.RawQuery = q.Encode()
				direct = u
			case "memcached":
				direct = &url.URL{Scheme: "memcached", Host: servertest.Memcached(t), RawQuery: "timeout=5s"}
			}
			q := direct.Query()
			q.Set("prefix", prefix)
			direct.RawQuery = q.Encode()
			proxy := faultproxy.Start(t, direct.Host)
			viaProxy := *direct
			viaProxy.Host = proxy.Addr()
			if backend == "memcached" {
				shareMemcachedGeneration(t, direct.Host, prefix, direct.Host, proxy.Addr())
			}

			// StoreTimeout 1s: no call fails while the proxy holds A's
			// writes for the moment B deletes.
			open := func(u *url.URL) *Cache {
				s, err := stores.Open(ctx, u.String())
				require.NoError(t, err)
				t.Cleanup(func() {
					_ = s.Clear(ctx)
					_ = s.Close()
				})
				c, err := NewWithConfig(s, Config{StoreTimeout: time.Second, BreakerThreshold: -1,
					Slog: slog.New(slog.DiscardHandler)})
				require.NoError(t, err)
				return c
			}
			a, b := open(&viaProxy), open(direct)
			t.Cleanup(proxy.Pass) // the writes held end, whatever the test came to
			// The two processes share the namespace: what A writes, B reads.
			require.NoError(t, Set(ctx, a, "shared", "yes", time.Minute))
			v, err := Get[string](ctx, b, "shared")
			require.NoError(t, err, "B does not read what A wrote: the two Caches do not share a namespace")
			require.Equal(t, "yes", v)

			// A's handlers wait until all pages are being computed; then
			// the proxy holds everything A sends to the store, so each
			// page's write, made after its response, is under way while B
			// deletes it.
			envA, envB := newRouteEnv(t, a), newRouteEnv(t, b)
			var computing sync.WaitGroup
			computing.Add(pages)
			held := make(chan struct{})
			go func() {
				computing.Wait()
				proxy.Stall()
				close(held)
			}()
			envA.e.GET("/p/:n", envA.counted(func(c echo.Context) error {
				select {
				case <-held:
				default:
					computing.Done()
					<-held
				}
				return c.String(http.StatusOK, "old "+c.Param("n"))
			}), a.CachedWithConfig(envA.cfg(time.Minute)))
			envB.e.GET("/p/:n", envB.textHandler(), b.CachedWithConfig(envB.cfg(time.Minute)))

			var wg sync.WaitGroup
			for i := range pages {
				wg.Go(func() {
					target := "/p/" + strconv.Itoa(i)
					rec := httptest.NewRecorder()
					envA.e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
					// The response has been received: the data changes and
					// B deletes the page.
					if assert.Equal(t, StatusMiss, rec.Header().Get("X-Cache"), "A %s", target) {
						assert.NoError(t, b.DeletePage(ctx, target), "B %s", target)
					}
				})
			}
			wg.Wait()
			proxy.Pass() // A's writes land now, after B's deletes
			require.NoError(t, a.Flush(ctx))
			require.NoError(t, b.Flush(ctx))

			// A GET on either process runs the handler: half the pages are
			// asked of A, half of B (a page one of them stores again would
			// be a hit in the other).
			callsA, callsB := envA.calls.Load(), envB.calls.Load()
			for i := range pages {
				target := "/p/" + strconv.Itoa(i)
				env, name := envA, "A"
				if i%2 == 1 {
					env, name = envB, "B"
				}
				assert.Equal(t, StatusMiss, env.do(http.MethodGet, target).Header().Get("X-Cache"),
					"GET %s on %s after B deleted it: A's write of the old page outlived the delete", target, name)
			}
			assert.Equal(t, callsA+pages/2, envA.calls.Load(), "A's handler runs")
			assert.Equal(t, callsB+pages/2, envB.calls.Load(), "B's handler runs")
		})
	}
}

// shareMemcachedGeneration gives the servers addrs (host:port) of a
// memcached namespace one generation, written on the server at server.
// memcached keeps each server's entries under a generation stored under a
// key made of the server's address (stores/memcached_gen.go): a process
// that reaches the server through a proxy names another address, so the
// test makes both names share one generation, as two processes that name
// the server alike do.
func shareMemcachedGeneration(t *testing.T, server, prefix string, addrs ...string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", server, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	gen := strconv.FormatUint(uint64(raw[0])<<40|uint64(raw[1])<<32|uint64(raw[2])<<24|uint64(raw[3])<<16|uint64(raw[4])<<8|uint64(raw[5]), 10)
	r := bufio.NewReader(conn)
	for _, addr := range addrs {
		key := fmt.Sprintf("%sgen@%016x", prefix, xxhash.Sum64String(addr))
		_, err := fmt.Fprintf(conn, "set %s 0 0 %d\r\n%s\r\n", key, len(gen), gen)
		require.NoError(t, err)
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "STORED\r\n", line, "set %s", key)
	}
}
