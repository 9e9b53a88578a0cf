package stores_test

import (
	"context"
	"errors"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// A Redis Cluster by URL: any reachable node is enough for the store to
// find the others, so list a few.
func ExampleOpen_redisCluster() {
	ctx := context.Background()
	store, err := stores.Open(ctx, "redis+cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000/?prefix=myapp:")
	if err != nil {
		log.Fatal(err) // a bad URL names the problem
	}
	defer store.Close()
	if err := stores.Ping(ctx, store); err != nil {
		log.Printf("cache unavailable, serving uncached: %v", err)
	}
	cache := echocache.New(store)
	_ = cache
}

// A master watched by sentinels, by URL: the sentinels' addresses, then
// the name they know the master by. user:pass are the master's
// credentials; sentinels with a password of their own get it from
// sentinel_password.
func ExampleOpen_redisSentinel() {
	ctx := context.Background()
	store, err := stores.Open(ctx, "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/mymaster?prefix=myapp:")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	cache := echocache.New(store)
	_ = cache
}

// One master of a cluster down: the other masters' values come back with
// a NodeError that lists the keys it could not read.
func ExampleNodeError() {
	ctx := context.Background()
	store, err := stores.Open(ctx, "redis+cluster://10.0.0.1:7000,10.0.0.2:7000/?prefix=myapp:")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	values, err := stores.GetMany(ctx, store, []string{"a", "b", "c"})
	var nodeErr *stores.NodeError
	switch {
	case errors.As(err, &nodeErr):
		log.Printf("server %s is down: %d keys unread, %d values read", nodeErr.Node, len(nodeErr.Keys), len(values))
	case err != nil:
		log.Printf("cache unavailable: %v", err)
	}
}

// A cluster client of the application's own, shared with the store. The
// store refuses one that reads from replicas or caches on the client side:
// both could answer with a value older than the store's last write.
func ExampleNewRedis_cluster() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"},
	})
	defer client.Close()
	store, err := stores.NewRedis(stores.RedisConfig{Client: client, Prefix: "myapp:"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	cache := echocache.New(store)
	_ = cache
}
