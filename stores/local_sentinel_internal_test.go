package stores

import (
	"context"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echocache/echocache/internal/servertest"
)

func TestNewestMaster(t *testing.T) {
	up := func(addr string, epoch int64) sentinelView { return sentinelView{up: true, addr: addr, epoch: epoch} }
	tests := []struct {
		name    string
		views   []sentinelView
		current string
		want    string
	}{
		{"ok, no sentinel heard: none", []sentinelView{{}, {}}, "a:1", ""},
		{"ok, one heard", []sentinelView{{}, up("a:1", 0), {}}, "", "a:1"},
		{"ok, the newest configuration wins", []sentinelView{up("old:1", 3), up("new:1", 4), up("old:1", 3)}, "old:1", "new:1"},
		{"ok, a sentinel not heard any more does not count", []sentinelView{up("a:1", 3), {addr: "b:1", epoch: 9}}, "b:1", "a:1"},
		{"ok, a tie keeps the current master", []sentinelView{up("a:1", 2), up("b:1", 2)}, "b:1", "b:1"},
		{"ok, a tie without the current master: the first", []sentinelView{up("a:1", 2), up("b:1", 2)}, "c:1", "a:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newestMaster(tt.views, tt.current); got != tt.want {
				t.Errorf("newestMaster(%v, %q) = %q; want %q", tt.views, tt.current, got, tt.want)
			}
		})
	}
}

// openSentinelTier opens a local tier on the shared sentinel-managed master
// and waits until it is coherent.
func openSentinelTier(t *testing.T) *LocalTier {
	t.Helper()
	addrs, master := servertest.RedisSentinelAddrs(t)
	u := "redis+sentinel://" + strings.Join(addrs, ",") + "/" + url.PathEscape(master) + "?local=1MiB&prefix=" + url.QueryEscape("lsi:"+t.Name()+":")
	s, err := Open(t.Context(), u)
	if err != nil {
		t.Fatalf("Open(%q): %v", u, err)
	}
	t.Cleanup(func() { s.Close() })
	tier := s.(*LocalTier)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := tier.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the tier coherent", func() bool { return tier.LocalStats().Coherent })
	return tier
}

// waitFor polls cond every millisecond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLocalTierSentinelStrayConnection checks that while the store's own
// client holds a connection to a server other than the tracked master (as
// go-redis does after a failover when its sentinel has not heard of it
// yet), the tier serves no copy and keeps none, and that it drops every
// copy and is used again once that connection is closed.
func TestLocalTierSentinelStrayConnection(t *testing.T) {
	tier := openSentinelTier(t)
	ctx := t.Context()
	r := tier.Shared().(*Redis)
	tr := tier.channel.(*tracker)
	tr.mu.Lock()
	master := tr.remote
	tr.mu.Unlock()
	if err := tier.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a copy of k", func() bool {
		_, _ = tier.Get(ctx, "k")
		_, _, ok := tier.viewLocal("k")
		return ok
	})

	// go-redis dials another server: here the plain redis of the tests.
	ru, err := url.Parse(servertest.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	dial := r.conns.DialHook(func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	})
	flushes := tier.LocalStats().Flushes
	inFlight := tier.ticket("k2") // a read that started before the dial
	stray, err := dial(ctx, "tcp", ru.Host)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stray.(syscall.Conn); !ok {
		t.Errorf("a counted TCP connection is a %T, without SyscallConn: go-redis could not check its health", stray)
	}
	if tier.LocalStats().Coherent {
		t.Error("Coherent with a connection of the store to another server; want false")
	}
	if got := tier.LocalStats().Flushes; got <= flushes {
		t.Errorf("Flushes = %d after a connection to another server; want more than %d", got, flushes)
	}
	if _, _, ok := tier.viewLocal("k"); ok {
		t.Error("viewLocal(k) with a connection to another server = hit; want none")
	}
	tier.fill(inFlight, "k2", expiring{v: []byte("x"), left: NoExpiry, known: true})
	if tk := tier.ticket("k3"); tk.ok {
		t.Error("ticket(k3) with a connection to another server allows a fill")
	}

	// A connection to the tracked master itself changes nothing.
	same, err := dial(ctx, "tcp", master)
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()

	flushes = tier.LocalStats().Flushes
	if err := stray.Close(); err != nil {
		t.Fatal(err)
	}
	_ = stray.Close() // counted once
	if !tier.LocalStats().Coherent {
		t.Error("Coherent = false once the connection to another server is closed; want true")
	}
	if got := tier.LocalStats().Flushes; got <= flushes {
		t.Errorf("Flushes = %d once the connection to another server is closed; want more than %d", got, flushes)
	}
	if _, ok := tier.mem.read("k2"); ok {
		t.Error("a value read while the store had a connection to another server was kept")
	}
	if got, err := tier.Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Errorf("Get(k) = %q, %v; want v", got, err)
	}
}

// TestLocalTierSentinelTarget checks that a sentinel tracker listens to
// the master it is told to, and only once that server says it is a master:
// a replica named by mistake (or a demoted master) leaves the tier unused.
func TestLocalTierSentinelTarget(t *testing.T) {
	addrs, name := servertest.RedisSentinelAddrs(t)
	ctx := t.Context()
	sc := redis.NewSentinelClient(&redis.Options{Addr: addrs[0]})
	defer sc.Close()
	m, err := sc.GetMasterAddrByName(ctx, name).Result()
	if err != nil {
		t.Fatal(err)
	}
	master := net.JoinHostPort(m[0], m[1])
	replicas, err := sc.Replicas(ctx, name).Result()
	if err != nil || len(replicas) == 0 {
		t.Fatalf("SENTINEL REPLICAS %s = %v, %v; want one", name, replicas, err)
	}
	replica := net.JoinHostPort(replicas[0]["ip"], replicas[0]["port"])

	// A tracker whose watch does not run: the test names its target.
	tier := newTestTier(t)
	fo := &redis.FailoverOptions{MasterName: name, SentinelAddrs: addrs}
	applyFailoverDefaults(fo)
	base := redis.NewFailoverClient(fo)
	defer base.Close()
	tr := newSentinelTracker(tier, base.Options(), "lst:", fo, &masterConns{live: map[string]int{}})
	tr.wg.Go(tr.run)
	defer tr.close()
	if tier.LocalStats().Coherent {
		t.Fatal("Coherent before any master is named; want false")
	}

	tr.setTarget(replica, nil)
	waitFor(t, "the replica refused", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.lastErr != nil && strings.Contains(tr.lastErr.Error(), "not a master")
	})
	if tier.LocalStats().Coherent {
		t.Error("Coherent while the named server is a replica; want false")
	}

	tr.setTarget(master, nil)
	waitFor(t, "the tier coherent on the master", func() bool { return tier.LocalStats().Coherent })
	flushes := tier.LocalStats().Flushes
	tr.setTarget(replica, nil)
	if tier.LocalStats().Coherent {
		t.Error("Coherent right after the named master changed; want false")
	}
	if got := tier.LocalStats().Flushes; got <= flushes {
		t.Errorf("Flushes = %d after the named master changed; want more than %d", got, flushes)
	}
}
