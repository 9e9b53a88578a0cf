package servertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// SentinelMaster is the name the package's sentinels monitor their
// master by (sentinel monitor NAME ...).
const SentinelMaster = "echocache"

// Sentinel timings, in milliseconds: a master that does not answer for
// sentinelDownAfter is failed over within about a second more.
const (
	sentinelDownAfter       = 2000
	sentinelFailoverTimeout = 4000
)

// A RedisSentinel is a Redis master with one replica, monitored by three
// sentinels (quorum 2) under the name SentinelMaster, on loopback. A
// master that stops answering is replaced by the replica within about
// 3 s (down-after-milliseconds 2000).
type RedisSentinel struct {
	// Name is the name the sentinels know the master by.
	Name string
	// Master and Replica are the two redis-servers as started. After a
	// failover the roles are swapped (a restarted old master is made a
	// replica by the sentinels): MasterAddr tells who the master is now.
	Master, Replica *Server
	// Sentinels are the three sentinels.
	Sentinels []*Server
}

// Addrs returns the sentinels' addresses, "127.0.0.1:port".
func (s *RedisSentinel) Addrs() []string {
	addrs := make([]string, len(s.Sentinels))
	for i, n := range s.Sentinels {
		addrs[i] = n.Addr()
	}
	return addrs
}

// StartRedisSentinel starts a master, a replica and three sentinels of
// the test's own, for tests that kill or pause them, and waits until they
// are healthy (see WaitHealthy). extra arguments are added to the master's
// and the replica's. They are stopped when the test ends. Without
// redis-server the test is skipped (failed with CI=true).
func StartRedisSentinel(tb testing.TB, extra ...string) *RedisSentinel {
	tb.Helper()
	s, err := startRedisSentinel(tb.Context(), tb.TempDir(), extra...)
	need(tb, err, "")
	tb.Cleanup(s.kill)
	return s
}

func (s *RedisSentinel) kill() {
	killAll(append([]*Server{s.Master, s.Replica}, s.Sentinels...))
}

// startRedisSentinel starts the master, then the replica, and once the
// replica is in sync, the sentinels: a sentinel learns of the replica from
// the master's first INFO reply, so it knows it from the start.
func startRedisSentinel(ctx context.Context, dir string, extra ...string) (_ *RedisSentinel, err error) {
	s := &RedisSentinel{Name: SentinelMaster}
	defer func() {
		if err != nil {
			s.kill()
		}
	}()
	if s.Master, err = newRedis(filepath.Join(dir, "master"), extra...); err != nil {
		return nil, err
	}
	if err := s.Master.start(ctx); err != nil {
		return nil, err
	}
	replicaArgs := append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port())}, extra...)
	if s.Replica, err = newRedis(filepath.Join(dir, "replica"), replicaArgs...); err != nil {
		return nil, err
	}
	s.Replica.name = "redis replica"
	if err := s.Replica.start(ctx); err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	if err := waitHealthy(hctx, "redis replica", func(ctx context.Context) error {
		return replicaSynced(ctx, s.Replica.Addr())
	}); err != nil {
		return nil, err
	}
	s.Sentinels = make([]*Server, 3)
	for i := range s.Sentinels {
		if s.Sentinels[i], err = s.newSentinel(subdir(dir, "sentinel", i)); err != nil {
			return nil, err
		}
	}
	if err := startServers(ctx, s.Sentinels); err != nil {
		return nil, err
	}
	return s, s.WaitHealthy(hctx)
}

// newSentinel prepares a sentinel monitoring s.Master. Its configuration
// file names the master; its port is given on the command line, so a
// sentinel that must try another port uses the same file. The sentinel
// rewrites the file with what it learns, and a restarted sentinel reads it
// back.
func (s *RedisSentinel) newSentinel(dir string) (*Server, error) {
	n, err := newRedis(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("bind 127.0.0.1\ndir %q\n"+
		"sentinel monitor %[2]s 127.0.0.1 %[3]d 2\n"+
		"sentinel down-after-milliseconds %[2]s %[4]d\n"+
		"sentinel failover-timeout %[2]s %[5]d\n",
		dir, s.Name, s.Master.Port(), sentinelDownAfter, sentinelFailoverTimeout)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	n.name = "redis sentinel"
	n.args = func(port int) []string {
		return []string{conf, "--sentinel", "--port", strconv.Itoa(port)}
	}
	return n, nil
}

// WaitHealthy waits until every running sentinel sees the master up
// (flags "master"), knows the other two sentinels, and agrees with the
// others on who the master is, and the running redis-server that is not
// the master is its replica and in sync, or until ctx ends. After a
// failover it returns once the sentinels agree on the new master; after a
// killed old master was restarted, once it has been made a replica and
// synced (sentinels ask replicas for INFO every 10 s, so that can take
// that long).
func (s *RedisSentinel) WaitHealthy(ctx context.Context) error {
	return waitHealthy(ctx, "redis sentinel set", s.health)
}

func (s *RedisSentinel) health(ctx context.Context) error {
	master := ""
	for _, n := range s.Sentinels {
		if !n.running() {
			continue
		}
		v, err := redisDo(ctx, n.Addr(), "SENTINEL", "MASTER", s.Name)
		if err != nil {
			return fmt.Errorf("sentinel %s: %v", n.Addr(), err)
		}
		m := pairs(v)
		if m["flags"] != "master" {
			return fmt.Errorf("sentinel %s: master flags %q", n.Addr(), m["flags"])
		}
		if m["num-other-sentinels"] != strconv.Itoa(len(s.Sentinels)-1) {
			return fmt.Errorf("sentinel %s knows %s other sentinels", n.Addr(), m["num-other-sentinels"])
		}
		addr := net.JoinHostPort(m["ip"], m["port"])
		if master == "" {
			master = addr
		} else if addr != master {
			return fmt.Errorf("sentinels disagree on the master: %s and %s", master, addr)
		}
	}
	for _, r := range []*Server{s.Master, s.Replica} {
		if !r.running() || r.Addr() == master {
			continue
		}
		info, err := redisText(ctx, r.Addr(), "INFO", "replication")
		if err != nil {
			return fmt.Errorf("%s: %v", r.Addr(), err)
		}
		if got := net.JoinHostPort(infoField(info, "master_host"), infoField(info, "master_port")); got != master {
			return fmt.Errorf("%s replicates %q, not the master %s", r.Addr(), got, master)
		}
		if err := replicaSynced(ctx, r.Addr()); err != nil {
			return err
		}
	}
	return nil
}

// MasterAddr returns the address of the master as the first running
// sentinel that answers announces it (SENTINEL GET-MASTER-ADDR-BY-NAME).
func (s *RedisSentinel) MasterAddr(ctx context.Context) (string, error) {
	err := errors.New("no running sentinel")
	for _, n := range s.Sentinels {
		if !n.running() {
			continue
		}
		var v any
		if v, err = redisDo(ctx, n.Addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.Name); err != nil {
			continue
		}
		if a, ok := v.([]any); ok && len(a) == 2 {
			host, _ := a[0].(string)
			port, _ := a[1].(string)
			return net.JoinHostPort(host, port), nil
		}
		err = fmt.Errorf("sentinel %s: reply %v", n.Addr(), v)
	}
	return "", fmt.Errorf("servertest: the master of %s: %w", s.Name, err)
}

// pairs turns a flat [name, value, ...] reply into a map.
func pairs(v any) map[string]string {
	a, _ := v.([]any)
	m := make(map[string]string, len(a)/2)
	for i := 0; i+1 < len(a); i += 2 {
		k, _ := a[i].(string)
		val, _ := a[i+1].(string)
		m[k] = val
	}
	return m
}
