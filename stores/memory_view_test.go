package stores_test

import (
	"context"
	"fmt"
	"strings"
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

// A reader that parses a value on every read can parse it once per stored
// value instead, keeping the parsed form in the value's memo.
func ExampleMemo() {
	ctx := context.Background()
	m, err := stores.NewMemory(stores.MemoryConfig{})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	_ = m.Set(ctx, "csv", []byte("a,b,c"), stores.NoExpiry)

	parses := 0
	fields := func() []string {
		raw, memo, err := m.View(ctx, "csv")
		if err != nil {
			return nil
		}
		if f, ok := memo.Load().([]string); ok {
			return f
		}
		parses++
		f := strings.Split(string(raw), ",")
		memo.Store(f) // f depends on raw alone and is never modified
		return f
	}
	fmt.Println(fields(), fields(), parses)

	_ = m.Set(ctx, "csv", []byte("x,y"), stores.NoExpiry) // a new value, a new memo
	fmt.Println(fields(), parses)
	// Output:
	// [a b c] [a b c] 1
	// [x y] 2
}
