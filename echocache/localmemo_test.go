package echocache

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

// A memoized function on redis behind a local tier keeps its version
// token while the tier vouches for it (no read per call), and drops it as
// soon as the token may have changed: a ForgetAll here at once, another
// process's ForgetAll or any client's write of the token once redis
// announces it, a new store given by Init at once. Results decoded from a
// tier's copy are shared by its readers only while the copy lives.
func TestMemoizeLocalTierVersion(t *testing.T) {
	ctx := context.Background()
	prefix := mwPrefix(t)
	url := servertest.Redis(t) + "?local=1MiB&prefix=" + prefix
	open := func() stores.Store {
		s, err := stores.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := stores.Ping(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(), open()
	t.Cleanup(func() { _ = a.Clear(ctx) })
	ca, cb := newMWCache(t, a), newMWCache(t, b)
	var calls atomic.Int64
	fn := func(_ context.Context, n int) (string, error) {
		return fmt.Sprintf("%d#%d", n, calls.Add(1)), nil
	}
	ma, mb := Memoize(ca, "pin", time.Hour, fn), Memoize(cb, "pin", time.Hour, fn)
	get := func(m *Memoized[int, string]) string {
		t.Helper()
		v, err := m.Get(ctx, 1)
		if err != nil {
			t.Fatalf("Get(1) = %v", err)
		}
		return v
	}
	// pinned reads until the version token is pinned: the reads after a
	// write go to redis until the writer's own announcement has passed.
	pinned := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for ma.pin.Load() == nil || !ca.core().Unchanged(ma.pin.Load().stamp) {
			if got := get(ma); got != want {
				t.Fatalf("Get(1) = %q; want %q", got, want)
			}
			if time.Now().After(deadline) {
				t.Fatal("the version token is not pinned after 5s")
			}
			time.Sleep(time.Millisecond)
		}
		if got := get(ma); got != want {
			t.Fatalf("Get(1) with the token pinned = %q; want %q", got, want)
		}
	}
	// changes reads until the result is recomputed under a new version.
	changes := func(from, want, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for got := get(ma); got != want; got = get(ma) {
			if got != from {
				t.Fatalf("after %s, Get(1) = %q; want %q or, until redis announces it, %q", what, got, want, from)
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s, Get(1) = %q after 5s; want %q", what, got, want)
			}
			time.Sleep(time.Millisecond)
		}
	}

	if got := get(ma); got != "1#1" {
		t.Fatalf("first Get(1) = %q; want 1#1", got)
	}
	pinned("1#1")

	if err := ma.ForgetAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(ma); got != "1#2" {
		t.Errorf("Get(1) right after this process's ForgetAll = %q; want 1#2", got)
	}
	pinned("1#2")

	if err := mb.ForgetAll(ctx); err != nil {
		t.Fatal(err)
	}
	changes("1#2", "1#3", "another process's ForgetAll")
	pinned("1#3")

	opt, err := redis.ParseURL(servertest.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Set(ctx, prefix+keyspace.MemoVersion+"pin", "00000000000000aa", 0).Err(); err != nil {
		t.Fatal(err)
	}
	changes("1#3", "1#4", "a plain client's write of the token")
	pinned("1#4")

	// Another store: the pin was the old store's.
	ca.Init(b)
	if got := get(ma); got != "1#4" {
		t.Errorf("Get(1) on the other store = %q; want its 1#4", got)
	}
	if err := mb.ForgetAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(ma); got != "1#5" {
		t.Errorf("Get(1) after ForgetAll through the same store = %q; want 1#5", got)
	}
}
