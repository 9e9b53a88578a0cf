package integration

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/servertest"
)

// redisCounts is what a redis-server says it was sent: the calls of each
// command (INFO commandstats) and the bytes it read from its clients
// (INFO stats total_net_input_bytes).
type redisCounts struct {
	calls map[string]int64
	in    int64
}

func readRedisCounts(t *testing.T, rc *redis.Client) redisCounts {
	t.Helper()
	out := redisCounts{calls: map[string]int64{}}
	info, err := rc.Info(t.Context(), "commandstats", "stats").Result()
	require.NoError(t, err)
	for line := range strings.SplitSeq(info, "\r\n") {
		if name, rest, ok := strings.Cut(line, ":"); ok {
			if cmd, ok := strings.CutPrefix(name, "cmdstat_"); ok {
				for field := range strings.SplitSeq(rest, ",") {
					if v, ok := strings.CutPrefix(field, "calls="); ok {
						out.calls[cmd], _ = strconv.ParseInt(v, 10, 64)
					}
				}
			}
			if name == "total_net_input_bytes" {
				out.in, _ = strconv.ParseInt(rest, 10, 64)
			}
		}
	}
	return out
}

// redisWriteCommands are the commands that write a key, of those a store
// may send.
var redisWriteCommands = []string{"set", "setex", "psetex", "setnx", "mset", "msetnx", "getset", "getex", "append",
	"hset", "hmset", "hsetnx", "rpush", "lpush", "sadd", "zadd", "incr", "incrby", "decr", "decrby",
	"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "copy", "rename", "restore", "expire", "pexpire", "del", "unlink"}

// writesSince returns the write commands redis was sent since before, by
// command.
func writesSince(before, after redisCounts) map[string]int64 {
	out := map[string]int64{}
	for _, c := range redisWriteCommands {
		if d := after.calls[c] - before.calls[c]; d != 0 {
			out[c] = d
		}
	}
	return out
}

// TestOneWritePerPageRedis stores pages through a route on a redis of the
// test's own and counts, on the server, what each missed page costs: one
// write command, and the bytes redis read for it hold one copy of the
// body (a random body, which compression cannot shrink), with room for
// the key, the entry's header and the lookups, but not for a second copy.
// Pages without Vary and each variant of a page with Vary alike.
func TestOneWritePerPageRedis(t *testing.T) {
	const bodySize = 16 << 10
	srv := servertest.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rc.Close() })
	c, err := echocache.NewWithConfig(openStore(t, "redis://"+srv.Addr()+"/0?prefix="+namespace("writes")), echocache.Config{
		StoreTimeout: 5 * time.Second, // a loaded machine must not time a write out
		Logger:       quietLogger,
	})
	require.NoError(t, err)
	e := echo.New()
	body := func() string {
		b := make([]byte, bodySize/2)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	e.GET("/plain/:n", func(ec echo.Context) error { return ec.String(http.StatusOK, body()) }, c.Cached(time.Hour))
	e.GET("/varied", func(ec echo.Context) error {
		ec.Response().Header().Set("Vary", "Accept-Language")
		ec.Response().Header().Set("Content-Language", ec.Request().Header.Get("Accept-Language"))
		return ec.String(http.StatusOK, body())
	}, c.Cached(time.Hour))
	ts := httptest.NewServer(e)
	t.Cleanup(ts.Close)

	get := func(path, lang string) *http.Response {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+path, nil)
		require.NoError(t, err)
		if lang != "" {
			req.Header.Set("Accept-Language", lang)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body) // a body left unread ends the request early: no page is stored
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return resp
	}
	// missed stores one page (a miss, then the write that follows the
	// response) and checks what redis was sent for it.
	missed := func(path, lang string) {
		t.Helper()
		before := readRedisCounts(t, rc)
		resp := get(path, lang)
		require.Equal(t, echocache.StatusMiss, resp.Header.Get("X-Cache"), "GET %s %s", path, lang)
		total := func(w map[string]int64) (n int64) {
			for _, d := range w {
				n += d
			}
			return n
		}
		require.NoError(t, c.Flush(t.Context()))
		after := readRedisCounts(t, rc)
		writes := writesSince(before, after)
		n := total(writes)
		in := after.in - before.in
		assert.Equal(t, int64(1), n, "GET %s %s: write commands for one missed page: %v", path, lang, writes)
		assert.GreaterOrEqual(t, in, int64(bodySize), "GET %s %s: bytes sent to redis: the body is not stored", path, lang)
		assert.Less(t, in, int64(bodySize+bodySize/2), "GET %s %s: bytes sent to redis: %d for a body of %d, more than one copy", path, lang, in, bodySize)
		hit := get(path, lang)
		assert.Equal(t, echocache.StatusHit, hit.Header.Get("X-Cache"), "GET %s %s again", path, lang)
		t.Logf("GET %s %s: %v, %d bytes sent to redis for a body of %d", path, lang, writes, in, bodySize)
	}
	for i := range 3 {
		missed(fmt.Sprintf("/plain/%d", i), "")
	}
	for _, lang := range []string{"en", "fr", "de"} {
		missed("/varied", lang)
	}
}
