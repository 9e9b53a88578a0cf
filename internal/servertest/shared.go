package servertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The topologies of the shared set, each started in a directory of its
// own.
var (
	redisTopology = &topology{name: "redis", start: single(EnvRedisURL, "redis://%s/0",
		func(_ context.Context, dir string) (*Server, error) { return newRedis(dir) })}
	clusterTopology = &topology{name: "redis-cluster", start: func(ctx context.Context, dir string) ([]*Server, map[string]string, error) {
		c, err := startRedisCluster(ctx, dir)
		if err != nil {
			return nil, nil, err
		}
		return c.Nodes, map[string]string{EnvRedisClusterAddrs: strings.Join(c.Addrs(), ",")}, nil
	}}
	sentinelTopology = &topology{name: "redis-sentinel", start: func(ctx context.Context, dir string) ([]*Server, map[string]string, error) {
		s, err := startRedisSentinel(ctx, dir)
		if err != nil {
			return nil, nil, err
		}
		return append([]*Server{s.Master, s.Replica}, s.Sentinels...), map[string]string{
			EnvRedisSentinelAddrs:  strings.Join(s.Addrs(), ","),
			EnvRedisSentinelMaster: s.Name,
		}, nil
	}}
	memcachedTopology = &topology{name: "memcached", start: single(EnvMemcachedAddr, "%s",
		func(_ context.Context, dir string) (*Server, error) { return newMemcached(dir, "-m", "256") })}
	poolTopology = &topology{name: "memcached-pool", start: func(ctx context.Context, dir string) ([]*Server, map[string]string, error) {
		pool := make([]*Server, 3)
		addrs := make([]string, len(pool))
		for i := range pool {
			var err error
			if pool[i], err = newMemcached(subdir(dir, "memcached", i)); err != nil {
				return nil, nil, err
			}
		}
		if err := startServers(ctx, pool); err != nil {
			return nil, nil, err
		}
		for i, s := range pool {
			addrs[i] = s.Addr()
		}
		return pool, map[string]string{EnvMemcachedPool: strings.Join(addrs, ",")}, nil
	}}
	authTopology = &topology{name: "memcached-auth", start: single(EnvMemcachedAuthURL, "memcached://"+AuthUser+":"+AuthPass+"@%s",
		func(_ context.Context, dir string) (*Server, error) { return newMemcachedAuth(dir) })}
	saslTopology = &topology{name: "memcached-sasl", start: single(EnvMemcachedSASLURL, "saslmemcached://"+AuthUser+":"+AuthPass+"@%s",
		func(ctx context.Context, dir string) (*Server, error) { return newMemcachedSASL(ctx, dir) })}
)

// topologies is the shared set, in the order the launcher reports it.
var topologies = []*topology{
	redisTopology, clusterTopology, sentinelTopology,
	memcachedTopology, poolTopology, authTopology, saslTopology,
}

// single returns the start of a topology of one server, prepared by
// prepare, whose variable env is format with the server's address.
func single(env, format string, prepare func(context.Context, string) (*Server, error)) func(context.Context, string) ([]*Server, map[string]string, error) {
	return func(ctx context.Context, dir string) ([]*Server, map[string]string, error) {
		s, err := prepare(ctx, dir)
		if err == nil {
			err = s.start(ctx)
		}
		if err != nil {
			return nil, nil, err
		}
		return []*Server{s}, map[string]string{env: fmt.Sprintf(format, s.Addr())}, nil
	}
}

// Shared is the shared set of servers of a whole test run, started by the
// launcher (cmd/withservers) and handed to the tests in environment
// variables (Env).
type Shared struct {
	dir     string
	servers []*Server
	env     map[string]string
	missing []error
	took    map[string]time.Duration
	total   time.Duration
}

// StartShared starts every topology of the shared set at once, each in a
// directory of its own under a new temporary directory, and returns when
// all of them are healthy (about 2.5 s: the Redis Cluster is the slowest).
// A topology whose program is not installed is left out and reported by
// Missing. Any other failure stops what was started and is returned.
func StartShared(ctx context.Context) (*Shared, error) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "echocache-servers-")
	if err != nil {
		return nil, err
	}
	sh := &Shared{dir: dir, env: map[string]string{}, took: map[string]time.Duration{}}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for _, t := range topologies {
		wg.Go(func() {
			t0 := time.Now()
			servers, env, err := t.run(ctx, filepath.Join(dir, t.name))
			mu.Lock()
			defer mu.Unlock()
			var missing *missingError
			switch {
			case errors.As(err, &missing):
				sh.missing = append(sh.missing, err)
			case err != nil:
				errs = append(errs, err)
			default:
				sh.servers = append(sh.servers, servers...)
				for k, v := range env {
					sh.env[k] = v
				}
				sh.took[t.name] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	sh.total = time.Since(start)
	if len(errs) > 0 {
		sh.Stop()
		return nil, errors.Join(errs...)
	}
	return sh, nil
}

// Env returns the environment variables naming the shared servers, as
// "NAME=value", sorted by name.
func (sh *Shared) Env() []string {
	env := make([]string, 0, len(sh.env))
	for k, v := range sh.env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// Missing returns, for each topology left out, the error naming the
// program that is not installed.
func (sh *Shared) Missing() []error { return sh.missing }

// String describes the shared set: each topology's variables and start
// time, and the time the whole set took.
func (sh *Shared) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d servers in %v:", len(sh.servers), sh.total.Round(time.Millisecond))
	for _, t := range topologies {
		if d, ok := sh.took[t.name]; ok {
			fmt.Fprintf(&b, "\n  %s (%v)", t.name, d.Round(time.Millisecond))
		}
	}
	for _, kv := range sh.Env() {
		fmt.Fprintf(&b, "\n  %s", kv)
	}
	for _, err := range sh.missing {
		fmt.Fprintf(&b, "\n  left out: %v", err)
	}
	return b.String()
}

// Stop kills every server of the set and removes its directory.
func (sh *Shared) Stop() {
	var wg sync.WaitGroup
	for _, s := range sh.servers {
		wg.Go(s.Kill)
	}
	wg.Wait()
	_ = os.RemoveAll(sh.dir)
}
