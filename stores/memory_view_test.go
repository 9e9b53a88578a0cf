package stores_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/inproc"
	"github.com/echocache/echocache/stores"
)

func TestMemoryView(t *testing.T) {
	ctx := context.Background()
	m, err := stores.NewMemory(stores.MemoryConfig{})
	require.NoError(t, err)
	in, ok := inproc.Lookup(m)
	require.True(t, ok, "Memory lives in the process")
	require.NotNil(t, in.View, "Memory hands out its bytes")
	v := struct{ View inproc.ViewFunc }{in.View}

	_, _, err = v.View(ctx, "absent")
	assert.ErrorIs(t, err, stores.ErrNotFound)

	require.NoError(t, m.Set(ctx, "k", []byte("one"), 0))
	first, memo, err := v.View(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "one", string(first))
	require.NotNil(t, memo, "ok, a value written by Set has a memo")
	assert.Nil(t, memo.Load(), "ok, a new value's memo is empty")
	memo.Store("derived from one")
	again, againMemo, err := v.View(ctx, "k")
	require.NoError(t, err)
	assert.Same(t, &first[0], &again[0], "ok, the stored bytes, not a copy")
	assert.Same(t, memo, againMemo, "ok, the same value, the same memo")
	assert.Equal(t, "derived from one", againMemo.Load())

	require.NoError(t, m.Set(ctx, "k", []byte("two"), 0))
	assert.Equal(t, "one", string(first), "ok, a Set replaces the value; a viewed slice never changes")
	now, nowMemo, err := v.View(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "two", string(now))
	require.NotNil(t, nowMemo)
	assert.Nil(t, nowMemo.Load(), "nok, a memo outliving its value would describe other bytes")

	_, err = m.Incr(ctx, "n", 1)
	require.NoError(t, err)
	_, incrMemo, err := v.View(ctx, "n")
	require.NoError(t, err)
	assert.Nil(t, incrMemo, "ok, a value made by Incr has no memo")
	incrMemo.Store("kept nowhere")
	assert.Nil(t, incrMemo.Load(), "ok, a nil memo holds nothing and never panics")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = v.View(cctx, "k")
	assert.ErrorIs(t, err, context.Canceled)

	require.NoError(t, m.Close())
	_, _, err = v.View(ctx, "k")
	assert.ErrorIs(t, err, stores.ErrClosed)
}

func TestNullIsInProcess(t *testing.T) {
	in, ok := inproc.Lookup(stores.NewNull())
	require.True(t, ok, "Null lives in the process")
	assert.Nil(t, in.View, "Null has no bytes to hand out")
	_, ok = inproc.Lookup(struct{ stores.Store }{stores.NewNull()})
	assert.False(t, ok, "a wrapped store is not known to live in the process")
}
