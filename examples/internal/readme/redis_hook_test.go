package readme_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/servertest"
)

// The README's traced store sees the commands of the cache's calls.
func TestTracedRedisStore(t *testing.T) {
	u, err := url.Parse(servertest.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	store, err := newTracedRedisStore(u.Host, func(_ context.Context, cmd string, _ time.Duration, _ error) {
		mu.Lock()
		seen[cmd]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := t.Context()
	cache := echocache.New(store)
	if err := echocache.Set(ctx, cache, "traced", "v", time.Minute, echocache.Strict()); err != nil {
		t.Fatal(err)
	}
	if v, err := echocache.Get[string](ctx, cache, "traced"); err != nil || v != "v" {
		t.Fatalf("Get = %q, %v; want v", v, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["get"] == 0 || seen["set"]+seen["pipeline"] == 0 {
		t.Errorf("the hook saw %v; want the store's get and its write", seen)
	}
}
