package echocache

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/keyspace"
)

func TestLock(t *testing.T) {
	ctx := context.Background()
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		release, ok := c.core().Lock(ctx, "job", 10*time.Second)
		require.True(t, ok, "ok, first caller acquires")

		_, ok2 := c.core().Lock(ctx, "job", 10*time.Second)
		assert.False(t, ok2, "nok, second caller while held")

		rel3, ok3 := c.core().Lock(ctx, "other", 10*time.Second)
		assert.True(t, ok3, "ok, another name is independent")
		rel3()

		release()
		release() // twice is harmless
		rel4, ok4 := c.core().Lock(ctx, "job", 10*time.Second)
		assert.True(t, ok4, "ok, acquired again after release")
		rel4()
	})
}

func TestLockReleaseKeepsOthersLock(t *testing.T) {
	ctx := context.Background()
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		release, ok := c.core().Lock(ctx, "job", 10*time.Second)
		require.True(t, ok)
		// The lock expires (simulated by deleting it) and another holder takes it.
		require.NoError(t, c.core().Delete(ctx, keyspace.Lock+"job"))
		rel2, ok2 := c.core().Lock(ctx, "job", 10*time.Second)
		require.True(t, ok2)
		release() // the first holder's late release must not free the second's lock
		_, ok3 := c.core().Lock(ctx, "job", 10*time.Second)
		assert.False(t, ok3, "nok, the second holder's lock survived the first's release")
		rel2()
	})
}

func TestLockExpires(t *testing.T) {
	ctx := context.Background()
	forEachMWStore(t, func(t *testing.T, c *Cache) {
		_, ok := c.core().Lock(ctx, "job", 1100*time.Millisecond)
		require.True(t, ok)
		require.Eventually(t, func() bool {
			rel, ok := c.core().Lock(ctx, "job", time.Minute)
			if ok {
				rel()
			}
			return ok
		}, 5*time.Second, 50*time.Millisecond, "a lock that is never released expires")
	})
}

func TestLockFailOpen(t *testing.T) {
	s := newMWTestStore()
	s.setFail(errMWStoreDown)
	c := New(s)
	release, ok := c.core().Lock(context.Background(), "job", time.Second)
	assert.True(t, ok, "ok, an unreachable store does not block the caller")
	release()

	none := New(nil)
	_, ok = none.core().Lock(context.Background(), "job", time.Second)
	assert.True(t, ok, "ok, no store yet: proceed")
}
