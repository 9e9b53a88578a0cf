package stores_test

import (
	"context"
	"log"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// A local tier in front of redis, by URL: hits it holds make no round
// trip, and redis tells it of every change of the namespace's keys.
func ExampleOpen_localTier() {
	ctx := context.Background()
	store, err := stores.Open(ctx, "redis://127.0.0.1:6379/0?prefix=myapp:&local=32MiB")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	// Ping also waits until the invalidation connection is up.
	if err := stores.Ping(ctx, store); err != nil {
		log.Printf("cache unavailable, serving uncached: %v", err)
	}
	cache := echocache.New(store)
	_ = cache
}

// A local tier in Go, in front of memcached, which announces no changes:
// a copy lives at most MaxAge, the longest another process's change can
// go unseen here.
func ExampleNewLocalTier() {
	shared, err := stores.NewMemcached(stores.MemcachedConfig{Servers: []string{"127.0.0.1:11211"}, Prefix: "myapp:"})
	if err != nil {
		log.Fatal(err)
	}
	store, err := stores.NewLocalTier(shared, stores.LocalConfig{MaxBytes: 32 << 20, MaxAge: 2 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // closes shared too
	cache := echocache.New(store)
	_ = cache
}
