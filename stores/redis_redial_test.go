package stores_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// TestRedisRestartAfterPoolGaveUp kills the server, fails to dial it
// until go-redis's pool gives up dialling for its callers (pool_size
// failed dials; it then dials once a second on its own, starting now),
// restarts it at once and measures how soon a call succeeds: well within
// the second the pool would wait.
func TestRedisRestartAfterPoolGaveUp(t *testing.T) {
	const poolSize = 4
	srv := servertest.StartRedis(t)
	s := openURL(t, "redis://"+srv.Addr()+"/0?pool_size=4&prefix="+storetest.Namespace(t))
	ctx := t.Context()
	require.NoError(t, s.Set(ctx, "k", []byte("v"), 0))

	srv.Kill()
	for range 2 * poolSize {
		_, err := s.Get(ctx, "k")
		require.Error(t, err)
		require.False(t, errors.Is(err, stores.ErrNotFound))
	}
	require.NoError(t, srv.Restart())
	back := time.Now()
	for {
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err := s.Get(cctx, "k")
		cancel()
		if errors.Is(err, stores.ErrNotFound) { // the restarted server is empty
			break
		}
		require.Less(t, time.Since(back), 5*time.Second, "the restarted server is not used: %v", err)
		time.Sleep(5 * time.Millisecond) // paces the calls; not an assertion
	}
	d := time.Since(back)
	t.Logf("first answer %v after the restart", d.Round(time.Millisecond))
	assert.Less(t, d, 500*time.Millisecond, "the store waited for go-redis's once-a-second dial")
}

// TestRedisClearWhileDownUsedAgain kills the server under concurrent load
// (Set and Get of one key, 20 a second), calls Clear while it is down (an
// error) and restarts it: a call succeeds within a second of the restart
// and none fails after that. A Clear that could not run leaves nothing
// behind that keeps the store off.
func TestRedisClearWhileDownUsedAgain(t *testing.T) {
	srv := servertest.StartRedis(t)
	s := openURL(t, "redis://"+srv.Addr()+"/0?prefix="+storetest.Namespace(t))
	ctx := t.Context()
	require.NoError(t, s.Set(ctx, "k", []byte("v"), 0))

	load := startRestartLoad(t, s, "k", 2, 100*time.Millisecond, 300*time.Millisecond) // 20 calls a second
	srv.Kill()
	require.Eventually(t, load.failed.Load, 10*time.Second, 5*time.Millisecond, "no call failed with the server down")
	require.Error(t, s.Clear(ctx), "Clear with the server down")
	require.NoError(t, srv.Restart())
	load.usedAgain(t, time.Now())
	require.NoError(t, s.Clear(ctx), "Clear once the server is back")
}
