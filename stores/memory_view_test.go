package stores_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/stores"
)

func TestMemoryView(t *testing.T) {
	ctx := context.Background()
	m, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	var s stores.Store = m
	v, ok := s.(stores.Viewer)
	require.True(t, ok, "Memory implements Viewer")

	_, err = v.View(ctx, "absent")
	assert.ErrorIs(t, err, stores.ErrNotFound)

	require.NoError(t, m.Set(ctx, "k", []byte("one"), 0))
	first, err := v.View(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "one", string(first))
	again, err := v.View(ctx, "k")
	require.NoError(t, err)
	assert.Same(t, &first[0], &again[0], "ok, the stored bytes, not a copy")

	require.NoError(t, m.Set(ctx, "k", []byte("two"), 0))
	assert.Equal(t, "one", string(first), "ok, a Set replaces the value; a viewed slice never changes")
	now, err := v.View(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "two", string(now))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = v.View(cctx, "k")
	assert.ErrorIs(t, err, context.Canceled)

	require.NoError(t, m.Close())
	_, err = v.View(ctx, "k")
	assert.ErrorIs(t, err, stores.ErrClosed)
}
