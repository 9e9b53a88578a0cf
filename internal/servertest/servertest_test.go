package servertest_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"

	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"

	"github.com/echocache/echocache/internal/servertest"
)

// TestSharedServers checks that every shared server answers: the ones
// make test starts, or the ones this test binary starts without it.
func TestSharedServers(t *testing.T) {
	ctx := t.Context()
	t.Run("redis", func(t *testing.T) {
		opts, err := redis.ParseURL(servertest.Redis(t))
		if err != nil {
			t.Fatal(err)
		}
		pingRedis(t, opts.Addr)
	})
	t.Run("redis cluster", func(t *testing.T) {
		addrs := servertest.RedisClusterAddrs(t)
		if len(addrs) != 6 {
			t.Fatalf("RedisClusterAddrs = %q; want six nodes", addrs)
		}
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs[:1]})
		defer c.Close()
		masters := map[string]bool{}
		for i := range 30 { // keys in many slots, on every master
			key := fmt.Sprintf("servertest:%s:%d", t.Name(), i)
			if err := c.Set(ctx, key, "v", time.Minute).Err(); err != nil {
				t.Fatalf("SET %s: %v", key, err)
			}
			_ = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
				if n, _ := m.Exists(ctx, key).Result(); n == 1 {
					masters[m.Options().Addr] = true
				}
				return nil
			})
		}
		if len(masters) != 3 {
			t.Errorf("the keys are on masters %v; want three masters", masters)
		}
	})
	t.Run("redis sentinel", func(t *testing.T) {
		addrs, name := servertest.RedisSentinelAddrs(t)
		if len(addrs) != 3 || name == "" {
			t.Fatalf("RedisSentinelAddrs = %q, %q; want three sentinels and a master name", addrs, name)
		}
		c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: name, SentinelAddrs: addrs})
		defer c.Close()
		key := "servertest:" + t.Name()
		if err := c.Set(ctx, key, "v", time.Minute).Err(); err != nil {
			t.Fatalf("SET through the sentinels: %v", err)
		}
	})
	t.Run("memcached", func(t *testing.T) { setMemcached(t, servertest.Memcached(t)) })
	t.Run("memcached pool", func(t *testing.T) {
		pool := servertest.MemcachedPool(t)
		seen := map[string]bool{servertest.Memcached(t): true}
		for _, addr := range pool {
			if seen[addr] {
				t.Errorf("MemcachedPool = %q: %s twice, or the server of Memcached", pool, addr)
			}
			seen[addr] = true
			setMemcached(t, addr)
		}
		if len(pool) != 3 {
			t.Errorf("MemcachedPool = %q; want three servers", pool)
		}
	})
	t.Run("memcached auth", func(t *testing.T) {
		u := parseURL(t, servertest.MemcachedAuth(t), "memcached")
		pass, _ := u.User.Password()
		if reply := asciiLogin(t, u.Host, u.User.Username(), pass); reply != "STORED" {
			t.Errorf("ASCII login with the URL's credentials = %q; want STORED", reply)
		}
	})
	t.Run("memcached sasl", func(t *testing.T) {
		u := parseURL(t, servertest.MemcachedSASL(t), "saslmemcached")
		pass, _ := u.User.Password()
		if status := saslAuth(t, dial(t, u.Host), u.User.Username(), pass); status != statusOK {
			t.Errorf("SASL PLAIN with the URL's credentials: status %#04x; want %#04x", status, statusOK)
		}
	})
}

// Binary protocol of memcached, written out here by hand, apart from the
// package's own code
// (https://github.com/memcached/memcached/wiki/BinaryProtocolRevamped).
const (
	magicRequest  = 0x80
	magicResponse = 0x81
	opGet         = 0x00
	opSASLAuth    = 0x21
	statusOK      = 0x0000
	statusAuth    = 0x0020 // authentication error
)

// TestMemcachedSASLPlain checks the SASL memcached by hand: good
// credentials are accepted, bad ones refused, and a connection that has
// not authenticated can do nothing.
func TestMemcachedSASLPlain(t *testing.T) {
	u := parseURL(t, servertest.MemcachedSASL(t), "saslmemcached")
	if u.User.Username() != servertest.AuthUser {
		t.Fatalf("URL user = %q; want %q", u.User.Username(), servertest.AuthUser)
	}
	tests := []struct {
		name, user, pass string
		want             uint16
	}{
		{"ok, the package's credentials", servertest.AuthUser, servertest.AuthPass, statusOK},
		{"nok, wrong password", servertest.AuthUser, servertest.AuthPass + "x", statusAuth},
		{"nok, empty password", servertest.AuthUser, "", statusAuth},
		{"nok, unknown user", "nobody", servertest.AuthPass, statusAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := dial(t, u.Host)
			if got := saslAuth(t, conn, tt.user, tt.pass); got != tt.want {
				t.Fatalf("SASL PLAIN as %q: status %#04x; want %#04x", tt.user, got, tt.want)
			}
			if tt.want == statusOK {
				return
			}
			// Refused, the connection may not read.
			writeRequest(t, conn, opGet, []byte("k"), nil)
			if got, _ := readResponse(t, conn, opGet); got != statusAuth {
				t.Errorf("GET after a refused login: status %#04x; want %#04x", got, statusAuth)
			}
		})
	}
}

// TestServerKillRestart kills each kind of private server, checks that it
// is gone, restarts it on its port and checks that it answers again.
func TestServerKillRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		start  func(testing.TB) *servertest.Server
		answer func(t *testing.T, addr string)
	}{
		{"redis", func(tb testing.TB) *servertest.Server { return servertest.StartRedis(tb) }, pingRedis},
		{"memcached", func(tb testing.TB) *servertest.Server { return servertest.StartMemcached(tb) }, setMemcached},
		{"memcached -Y", func(tb testing.TB) *servertest.Server { return servertest.StartMemcachedAuth(tb) }, func(t *testing.T, addr string) {
			if reply := asciiLogin(t, addr, servertest.AuthUser, servertest.AuthPass); reply != "STORED" {
				t.Fatalf("ASCII login = %q; want STORED", reply)
			}
		}},
		{"memcached -S", func(tb testing.TB) *servertest.Server { return servertest.StartMemcachedSASL(tb) }, func(t *testing.T, addr string) {
			if status := saslAuth(t, dial(t, addr), servertest.AuthUser, servertest.AuthPass); status != statusOK {
				t.Fatalf("SASL PLAIN: status %#04x; want %#04x", status, statusOK)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.start(t)
			addr := s.Addr()
			tt.answer(t, addr)
			s.Kill()
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Fatalf("dial %s after Kill succeeded; want it refused", addr)
			}
			s.Kill() // a second Kill does nothing
			if err := s.Restart(); err != nil {
				t.Fatal(err)
			}
			if s.Addr() != addr {
				t.Errorf("Addr after Restart = %s; want %s", s.Addr(), addr)
			}
			tt.answer(t, addr)
		})
	}
}

// TestServerPauseResume checks that a paused server answers nothing, and
// answers again once resumed.
func TestServerPauseResume(t *testing.T) {
	t.Parallel()
	s := servertest.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	var nerr net.Error
	if err := c.Ping(t.Context()).Err(); !errors.As(err, &nerr) || !nerr.Timeout() {
		t.Fatalf("PING a paused server = %v; want a timeout", err)
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING after Resume = %v; want PONG", err)
	}
	s.Kill()
	if err := s.Pause(); err == nil {
		t.Error("Pause of a killed server succeeded; want an error")
	}
}

// TestRedisClusterFailover kills the master of a key: its replica takes
// over, and the restarted master rejoins as a replica.
func TestRedisClusterFailover(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := servertest.StartRedisCluster(t)
	if len(c.Nodes) != 6 {
		t.Fatalf("%d nodes; want 6", len(c.Nodes))
	}
	for _, n := range c.Nodes { // failover in seconds, not the default 15 s
		rc := redis.NewClient(&redis.Options{Addr: n.Addr()})
		got, err := rc.ConfigGet(ctx, "cluster-node-timeout").Result()
		rc.Close()
		if err != nil || got["cluster-node-timeout"] != "2000" {
			t.Errorf("node %s: cluster-node-timeout %v, %v; want 2000", n.Addr(), got, err)
		}
	}
	master, replicas, err := c.MasterOf(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(replicas) != 1 {
		t.Fatalf("the master of k has replicas %v; want one", addrs(replicas))
	}
	replica := replicas[0]
	master.Kill()
	waitHealthy(t, c.WaitHealthy)
	now, _, err := c.MasterOf(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if now != replica {
		t.Fatalf("after the master %s was killed, k is served by %s; want its replica %s", master.Addr(), now.Addr(), replica.Addr())
	}
	if err := master.Restart(); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, c.WaitHealthy)
	_, replicas, err = c.MasterOf(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(replicas) != 1 || replicas[0] != master {
		t.Errorf("after the restart, k's replicas are %v; want the old master %s", addrs(replicas), master.Addr())
	}
}

// TestRedisSentinelFailover kills the master: the sentinels promote the
// replica, and make the restarted old master its replica.
func TestRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := servertest.StartRedisSentinel(t)
	if got, err := s.MasterAddr(ctx); err != nil || got != s.Master.Addr() {
		t.Fatalf("MasterAddr = %q, %v; want %s", got, err, s.Master.Addr())
	}
	// Failover in seconds, not the default 30 s + 3 min.
	for _, n := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: n.Addr()})
		m, err := sc.Master(ctx, s.Name).Result()
		sc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if m["down-after-milliseconds"] != "2000" || m["failover-timeout"] != "4000" || m["quorum"] != "2" {
			t.Errorf("sentinel %s: down-after-milliseconds %s, failover-timeout %s, quorum %s; want 2000, 4000, 2",
				n.Addr(), m["down-after-milliseconds"], m["failover-timeout"], m["quorum"])
		}
	}
	s.Master.Kill()
	waitHealthy(t, s.WaitHealthy)
	if got, err := s.MasterAddr(ctx); err != nil || got != s.Replica.Addr() {
		t.Fatalf("MasterAddr after the master was killed = %q, %v; want the replica %s", got, err, s.Replica.Addr())
	}
	if err := s.Master.Restart(); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, s.WaitHealthy) // the old master is made a replica and synced
	c := redis.NewClient(&redis.Options{Addr: s.Master.Addr()})
	defer c.Close()
	role, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) == 0 || role[0] != "slave" {
		t.Errorf("ROLE of the restarted old master = %v, %v; want slave", role, err)
	}
}

// TestFreePort checks that FreePort gives bindable ports below the
// ephemeral range.
func TestFreePort(t *testing.T) {
	for range 20 {
		p, err := servertest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < 1024 || p >= 32768 {
			t.Fatalf("FreePort() = %d; want a port in [1024, 32768)", p)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("FreePort() = %d, which cannot be bound: %v", p, err)
		}
		l.Close()
	}
}

// waitHealthy calls wait with a deadline of 30 s.
func waitHealthy(t *testing.T, wait func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func addrs(servers []*servertest.Server) []string {
	var a []string
	for _, s := range servers {
		a = append(a, s.Addr())
	}
	return a
}

func pingRedis(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING %s: %v", addr, err)
	}
}

func setMemcached(t *testing.T, addr string) {
	t.Helper()
	c := memcache.New(addr)
	defer c.Close()
	key := strings.NewReplacer("/", "_", " ", "_").Replace("servertest:" + t.Name())
	if err := c.Set(&memcache.Item{Key: key, Value: []byte("v"), Expiration: 60}); err != nil {
		t.Fatalf("memcached %s: set: %v", addr, err)
	}
}

func parseURL(t *testing.T, raw, scheme string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != scheme || u.User == nil || u.Host == "" {
		t.Fatalf("URL %q: want %s://user:pass@host:port", raw, scheme)
	}
	return u
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

// asciiLogin logs in to a memcached -Y and returns its reply line.
func asciiLogin(t *testing.T, addr, user, pass string) string {
	t.Helper()
	conn := dial(t, addr)
	cred := user + " " + pass
	if _, err := fmt.Fprintf(conn, "set auth 0 0 %d\r\n%s\r\n", len(cred), cred); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(line, "\r\n")
}

// saslAuth sends SASL Auth with mechanism PLAIN ("\x00user\x00pass", RFC
// 4616) and returns the response status.
func saslAuth(t *testing.T, conn net.Conn, user, pass string) uint16 {
	t.Helper()
	writeRequest(t, conn, opSASLAuth, []byte("PLAIN"), []byte("\x00"+user+"\x00"+pass))
	status, _ := readResponse(t, conn, opSASLAuth)
	return status
}

// writeRequest writes a request header (24 bytes: magic, opcode, key
// length, extras length, data type, vbucket, total body length, opaque,
// CAS) and the key and value.
func writeRequest(t *testing.T, w io.Writer, op byte, key, value []byte) {
	t.Helper()
	h := make([]byte, 24)
	h[0], h[1] = magicRequest, op
	binary.BigEndian.PutUint16(h[2:4], uint16(len(key)))
	binary.BigEndian.PutUint32(h[8:12], uint32(len(key)+len(value)))
	if _, err := w.Write(append(append(h, key...), value...)); err != nil {
		t.Fatal(err)
	}
}

// readResponse reads a response to op and returns its status and body.
func readResponse(t *testing.T, r io.Reader, op byte) (uint16, []byte) {
	t.Helper()
	h := make([]byte, 24)
	if _, err := io.ReadFull(r, h); err != nil {
		t.Fatal(err)
	}
	if h[0] != magicResponse || h[1] != op {
		t.Fatalf("response header % x: want magic %#x and opcode %#x", h, magicResponse, op)
	}
	body := make([]byte, binary.BigEndian.Uint32(h[8:12]))
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint16(h[6:8]), body
}
