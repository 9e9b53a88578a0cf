// Package servertest gives tests real servers on loopback: redis-server,
// a Redis Cluster, a Redis Sentinel set, memcached (plain, a pool of three,
// with ASCII authentication and with SASL), started from the programs on
// PATH. It is the project's one server launcher: make test runs the tests
// under cmd/withservers (through scripts/with-servers.sh), which starts the
// shared set once (StartShared) and passes it to every test binary in
// environment variables.
//
// Two kinds of servers:
//
//   - Shared servers, for tests that only use a server: Redis,
//     RedisClusterAddrs, RedisSentinelAddrs, Memcached, MemcachedPool,
//     MemcachedAuth and
//     MemcachedSASL return the address or URL from the environment variable
//     named after each (make test sets them all) or, when it is unset,
//     start the servers once per test binary. Tests share them safely by
//     working under a key prefix of their own; none may flush, kill or
//     reconfigure a shared server.
//   - Private servers, for tests that kill, restart, pause or reconfigure
//     them: StartRedis, StartRedisCluster, StartRedisSentinel,
//     StartMemcached, StartMemcachedAuth and StartMemcachedSASL start a
//     server or a topology for one test and stop it when the test ends.
//
// Every server listens on 127.0.0.1 on a port below the ephemeral range
// (FreePort), trying another port when one is taken before the server
// binds it, and counts as started only once it answers with its own
// process id. On Linux a server dies with the process that started it,
// however that process ends (KillWithParent).
//
// When a program is missing and no environment variable names a running
// server, the test is skipped with a message naming the program; with
// CI=true it fails instead, so no store test is ever silently skipped in
// CI. A server that is installed but does not start fails the test.
package servertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// The environment variables that name the shared servers. make test sets
// them all; a test binary run without one starts that server itself.
const (
	// EnvRedisURL is a redis:// URL with database 0: "redis://127.0.0.1:P/0".
	EnvRedisURL = "ECHOCACHE_REDIS_URL"
	// EnvRedisClusterAddrs is the comma-separated host:port of the six
	// nodes of a Redis Cluster of three masters and three replicas.
	EnvRedisClusterAddrs = "ECHOCACHE_REDIS_CLUSTER_ADDRS"
	// EnvRedisSentinelAddrs is the comma-separated host:port of three
	// sentinels monitoring a master with one replica.
	EnvRedisSentinelAddrs = "ECHOCACHE_REDIS_SENTINEL_ADDRS"
	// EnvRedisSentinelMaster is the name the sentinels know the master by.
	// Optional. Default value SentinelMaster.
	EnvRedisSentinelMaster = "ECHOCACHE_REDIS_SENTINEL_MASTER"
	// EnvMemcachedAddr is the host:port of a memcached without
	// authentication.
	EnvMemcachedAddr = "ECHOCACHE_MEMCACHED_ADDR"
	// EnvMemcachedPool is the comma-separated host:port of three
	// memcached servers without authentication, for pools.
	EnvMemcachedPool = "ECHOCACHE_MEMCACHED_POOL"
	// EnvMemcachedAuthURL is a memcached://user:pass@host:port URL of a
	// memcached with ASCII authentication (-Y).
	EnvMemcachedAuthURL = "ECHOCACHE_MEMCACHED_AUTH_URL"
	// EnvMemcachedSASLURL is a saslmemcached://user:pass@host:port URL of
	// a memcached with SASL authentication (-S, binary protocol, PLAIN).
	EnvMemcachedSASLURL = "ECHOCACHE_MEMCACHED_SASL_URL"
)

// Redis returns a redis:// URL of a shared redis-server, database 0
// ($ECHOCACHE_REDIS_URL).
func Redis(tb testing.TB) string {
	tb.Helper()
	return redisTopology.get(tb, EnvRedisURL)
}

// RedisClusterAddrs returns the addresses ("127.0.0.1:port") of the six nodes
// of a shared Redis Cluster, three masters and three replicas
// ($ECHOCACHE_REDIS_CLUSTER_ADDRS). A test that kills or pauses nodes
// starts its own with StartRedisCluster.
func RedisClusterAddrs(tb testing.TB) []string {
	tb.Helper()
	return strings.Split(clusterTopology.get(tb, EnvRedisClusterAddrs), ",")
}

// RedisSentinelAddrs returns the addresses of the three sentinels of a shared
// master and replica ($ECHOCACHE_REDIS_SENTINEL_ADDRS) and the name they
// know the master by ($ECHOCACHE_REDIS_SENTINEL_MASTER, default
// SentinelMaster). A test that kills or pauses servers starts its own with
// StartRedisSentinel.
func RedisSentinelAddrs(tb testing.TB) (addrs []string, master string) {
	tb.Helper()
	addrs = strings.Split(sentinelTopology.get(tb, EnvRedisSentinelAddrs), ",")
	if master = os.Getenv(EnvRedisSentinelMaster); master == "" {
		master = SentinelMaster
	}
	return addrs, master
}

// Memcached returns the host:port of a shared memcached without
// authentication ($ECHOCACHE_MEMCACHED_ADDR).
func Memcached(tb testing.TB) string {
	tb.Helper()
	return memcachedTopology.get(tb, EnvMemcachedAddr)
}

// MemcachedPool returns the host:port of three shared memcached servers
// without authentication, for pools ($ECHOCACHE_MEMCACHED_POOL). They are
// not the server of Memcached. A test that kills one starts its own with
// StartMemcached.
func MemcachedPool(tb testing.TB) []string {
	tb.Helper()
	return strings.Split(poolTopology.get(tb, EnvMemcachedPool), ",")
}

// MemcachedAuth returns a memcached://user:pass@host:port URL of a shared
// memcached with ASCII authentication (-Y), user AuthUser with password
// AuthPass ($ECHOCACHE_MEMCACHED_AUTH_URL).
func MemcachedAuth(tb testing.TB) string {
	tb.Helper()
	return authTopology.get(tb, EnvMemcachedAuthURL)
}

// MemcachedSASL returns a saslmemcached://user:pass@host:port URL of a
// shared memcached with SASL authentication (-S: binary protocol only,
// mechanism PLAIN), user AuthUser with password AuthPass
// ($ECHOCACHE_MEMCACHED_SASL_URL).
func MemcachedSASL(tb testing.TB) string {
	tb.Helper()
	return saslTopology.get(tb, EnvMemcachedSASLURL)
}

// need skips or fails tb when err says a program is missing (skip, or
// fail with CI=true), and fails it on any other error. env, when not
// empty, is the environment variable that would have named a server.
func need(tb testing.TB, err error, env string) {
	tb.Helper()
	if err == nil {
		return
	}
	var missing *missingError
	if !errors.As(err, &missing) {
		tb.Fatal(err)
	}
	msg := "servertest: " + missing.Error()
	if env != "" {
		msg += "; or set " + env
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + " (CI=true: not skipped)")
	}
	tb.Skip(msg)
}

// get returns the value of v: from the environment, or from the
// topology's servers, started once per test binary. Those servers live as
// long as the test binary (on Linux; elsewhere they outlive it) and their
// directory is left in the temporary directory.
func (t *topology) get(tb testing.TB, v string) string {
	tb.Helper()
	if val := os.Getenv(v); val != "" {
		return val
	}
	t.once.Do(func() {
		dir, err := os.MkdirTemp("", "echocache-"+t.name+"-")
		if err != nil {
			t.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*healthTimeout)
		defer cancel()
		_, t.env, t.err = t.run(ctx, dir)
	})
	need(tb, t.err, v)
	return t.env[v]
}

// A topology is a set of servers the shared servers are made of, and the
// environment variables that name it.
type topology struct {
	name  string
	start func(ctx context.Context, dir string) ([]*Server, map[string]string, error)

	once sync.Once // of get
	env  map[string]string
	err  error
}

// run starts the topology in dir.
func (t *topology) run(ctx context.Context, dir string) ([]*Server, map[string]string, error) {
	servers, env, err := t.start(ctx, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", t.name, err)
	}
	return servers, env, nil
}
