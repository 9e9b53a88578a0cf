package stores

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// The invalidation channel of a local tier in front of redis: Redis's
// client-side caching in broadcasting mode. Each tracking connection is a
// RESP2 connection that subscribes to __redis__:invalidate and turns on
// CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX <store prefix>
// when it connects (OnConnect, which go-redis runs on every dial of a
// PubSub, before it resubscribes), so tracking and subscription live and
// die together. Redis then announces every change of a key under the
// prefix on it, whoever made it: a Set, Delete or Clear through any store,
// redis-cli, an expiry, an eviction; FLUSHDB and FLUSHALL announce a null
// key, which go-redis reports as an error, and which flushes the tier.
//
// A tracking connection is down from the moment a read on it fails (the
// server gone, or silent for two ping intervals) until go-redis has
// dialled again and the subscription is confirmed: the tier answers
// nothing from memory meanwhile, and drops every copy when the
// confirmation arrives. A Redis Cluster gets one tracking connection per
// master, following the slot map; a Sentinel-managed master one on the
// master the sentinels name, moved at each switch (local_sentinel.go).

const (
	// invalidateChannel is where Redis sends the announcements of a
	// connection that redirects its tracking to itself.
	invalidateChannel = "__redis__:invalidate"
	// trackPing is how long a tracking connection may stay silent before
	// it is pinged; silent for twice as long, it is taken to be down.
	trackPing = time.Second
	// trackBackoffMax bounds the pause between two attempts to connect a
	// tracking connection again (the first is at once, then 50ms doubling).
	trackBackoffMax = 500 * time.Millisecond
	// clusterRefresh is how often the masters of a cluster are listed
	// (CLUSTER SLOTS) to track the new ones.
	clusterRefresh = time.Second
)

// localChannel implements localChannelSource.
func (r *Redis) localChannel(t *LocalTier) (invalidationChannel, error) {
	switch c := r.client.(type) {
	case *redis.ClusterClient:
		return newClusterTracking(t, c, r.prefix), nil
	case *redis.Client:
		if r.sentinel == nil {
			tr := newTracker(t, c.Options(), r.prefix, "")
			tr.start()
			return tr, nil
		}
		if err := r.conns.attach(t); err != nil {
			return nil, err
		}
		tr := newSentinelTracker(t, c.Options(), r.prefix, r.sentinel, r.conns)
		tr.start()
		return tr, nil
	default:
		return nil, fmt.Errorf("stores: local tier: a %T announces no changes; use a client of one server, a cluster or a sentinel-managed master", r.client)
	}
}

// tracker is one tracking connection.
type tracker struct {
	tier   *LocalTier
	client *redis.Client
	prefix string
	node   string // host:port on a cluster, for logs; "" otherwise

	// On a Sentinel-managed master (local_sentinel.go): watch names the
	// master to dial, conns counts the store's connections by server.
	watch *sentinelWatch
	conns *masterConns

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // cuts a pause between attempts short: the target changed

	// backoff is the pause before the next attempt after a failed one
	// (0 after a subscription); only run's goroutine uses it.
	backoff time.Duration

	mu       sync.Mutex
	ps       *redis.PubSub // the current subscription
	up       bool          // subscribed; otherwise counted in tier.down
	ready    chan struct{} // closed at the first subscription
	readyNow bool
	lastErr  error  // why the last attempt failed
	refused  error  // a server's refusal of CLIENT TRACKING, until it subscribes
	target   string // sentinel: the master to dial ("" none named)
	noTarget error  // sentinel: why none is named
	dialed   string // sentinel: the target the current connection was dialled to
	remote   string // sentinel: that connection's remote address
}

// newTracker returns a tracker on a copy of the options of a node client.
// It counts in t.down until subscribed.
func newTracker(t *LocalTier, base *redis.Options, prefix, node string) *tracker {
	o := *base
	o.Protocol = 2 // redirected tracking needs RESP2's pub/sub
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 1, 0, 0, 0
	o.MaxRetries = -1
	o.ClientSideCache, o.ClientSideCacheConfig = nil, nil
	// Maintenance notifications need RESP3; the copy must not share the
	// node client's config either, which go-redis writes to.
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	tr := &tracker{tier: t, prefix: prefix, node: node, ready: make(chan struct{}), kick: make(chan struct{}, 1)}
	prev := base.OnConnect
	o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if prev != nil {
			if err := prev(ctx, cn); err != nil {
				return err
			}
		}
		if tr.watch != nil {
			// Belt and braces: the sentinels name a promoted master only
			// once it reports the role.
			role, err := cn.Do(ctx, "ROLE").Slice()
			if err != nil {
				return err
			}
			if len(role) == 0 || role[0] != "master" {
				return fmt.Errorf("stores: local tier: the server is not a master (ROLE %v)", role)
			}
		}
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			return err
		}
		return cn.Do(ctx, "CLIENT", "TRACKING", "ON", "REDIRECT", id, "BCAST", "PREFIX", prefix).Err()
	}
	tr.client = redis.NewClient(&o)
	tr.ctx, tr.cancel = context.WithCancel(context.Background())
	t.down.Add(1)
	return tr
}

// newSentinelTracker returns a tracker on the master the sentinels of fo
// name (base: the options of the store's sentinel-backed client), which it
// dials itself, and which conns, the store's connections, must all reach.
func newSentinelTracker(t *LocalTier, base *redis.Options, prefix string, fo *redis.FailoverOptions, conns *masterConns) *tracker {
	o := *base
	dial := sentinelDialer(fo)
	var tr *tracker
	o.Dialer = func(ctx context.Context, network, _ string) (net.Conn, error) {
		// go-redis holds the subscription's lock while it dials: the
		// watch, which closes the subscription when the master changes,
		// must not be waited for here.
		tr.mu.Lock()
		target, none := tr.target, tr.noTarget
		tr.mu.Unlock()
		if target == "" {
			if none == nil {
				none = fmt.Errorf("no sentinel of %q answered yet", fo.MasterName)
			}
			return nil, none
		}
		cn, err := dial(ctx, network, target)
		if err != nil {
			return nil, err
		}
		tr.mu.Lock()
		tr.dialed, tr.remote = target, cn.RemoteAddr().String()
		tr.mu.Unlock()
		return cn, nil
	}
	tr = newTracker(t, &o, prefix, "")
	tr.conns = conns
	tr.watch = newSentinelWatch(fo, tr)
	return tr
}

func (tr *tracker) start() {
	tr.wg.Go(tr.run)
	if tr.watch != nil {
		tr.wg.Go(func() { tr.watch.run(tr.ctx) })
	}
}

func (tr *tracker) name() string {
	switch {
	case tr.watch != nil:
		return fmt.Sprintf("redis master %q", tr.watch.fo.MasterName)
	case tr.node == "":
		return "redis"
	}
	return "redis " + tr.node
}

// run keeps a subscription until the tracker is closed: a new one when
// the current one is found wedged or is restarted.
func (tr *tracker) run() {
	for tr.ctx.Err() == nil {
		ps := tr.client.Subscribe(tr.ctx, invalidateChannel)
		tr.mu.Lock()
		tr.ps = ps
		tr.mu.Unlock()
		tr.serve(ps)
		tr.setDown(nil)
		_ = ps.Close()
	}
}

// restart drops the current subscription; run makes a new one.
func (tr *tracker) restart() {
	tr.mu.Lock()
	ps := tr.ps
	tr.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
	}
}

// setTarget makes addr the master a sentinel tracker listens to ("" none,
// for the reason none). A change takes the tracker down, which drops every
// copy, even if it was down already (on every switch the tier flushes),
// and ends its subscription, so that run dials addr at once.
func (tr *tracker) setTarget(addr string, none error) {
	tr.mu.Lock()
	tr.noTarget = none
	if addr == tr.target {
		tr.mu.Unlock()
		return
	}
	tr.target = addr
	if tr.up {
		tr.downLocked()
	} else {
		tr.tier.flush()
	}
	ps := tr.ps
	tr.mu.Unlock()
	select {
	case tr.kick <- struct{}{}:
	default:
	}
	if ps != nil {
		_ = ps.Close()
	}
}

// serve reads the announcements of ps until it is closed or wedged. On a
// failed read it marks the tracker down and lets go-redis dial again
// (inside the next ReceiveTimeout), pausing between failed attempts.
func (tr *tracker) serve(ps *redis.PubSub) {
	ctx := tr.ctx
	last := time.Now()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, trackPing)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			if isTimeout(err) {
				if time.Since(last) >= 2*trackPing {
					tr.setDown(fmt.Errorf("no answer for %v", time.Since(last).Round(time.Millisecond)))
					return // wedged: a new subscription on a new connection
				}
				if perr := ps.Ping(ctx); perr != nil {
					tr.setDown(perr)
				}
				continue
			}
			// The connection failed (go-redis dials again on the next
			// read), the server refused tracking, or an announcement
			// go-redis cannot parse arrived: FLUSHDB's null key, after
			// which go-redis dials again too. Announcements may be lost
			// in each case.
			tr.setDown(err)
			if !tr.pause(tr.backoff) {
				return
			}
			tr.backoff = min(max(2*tr.backoff, 50*time.Millisecond), trackBackoffMax)
			var refused redis.Error
			if errors.As(err, &refused) {
				// A refusal (LOADING from a server still loading its
				// data, NOPERM under an ACL): go-redis keeps the
				// connection and never subscribes on it again, so the
				// tier would stay down for good. run subscribes anew.
				return
			}
			continue
		}
		last = time.Now()
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if !tr.setUp() {
					return // dialled before the target changed: dial it
				}
				tr.backoff = 0
			}
		case *redis.Message:
			if m.PayloadSlice == nil {
				tr.announce(m.Payload)
			}
			for _, k := range m.PayloadSlice {
				tr.announce(k)
			}
		}
	}
}

// announce drops the copy of the full key k.
func (tr *tracker) announce(k string) {
	if key, ok := strings.CutPrefix(k, tr.prefix); ok {
		tr.tier.invalidate(key)
	}
}

// pause waits d between two attempts, or less when the target changes;
// false when the tracker is closed.
func (tr *tracker) pause(d time.Duration) bool {
	if d <= 0 {
		return tr.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tr.ctx.Done():
		return false
	case <-tr.kick:
	case <-t.C:
	}
	return true
}

// setUp marks the tracker subscribed, unless it is a sentinel tracker
// whose connection was dialled to another master than the one named now
// (false: the caller subscribes again).
func (tr *tracker) setUp() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.watch != nil && (tr.target == "" || tr.dialed != tr.target) {
		return false
	}
	tr.refused = nil
	if !tr.readyNow {
		tr.readyNow = true
		close(tr.ready)
	} else if !tr.up {
		tr.tier.logf("%s invalidation connection back; local copies dropped", tr.name())
	}
	if !tr.up {
		tr.up = true
		if tr.conns != nil {
			// First, so that the tier stays down while the store's own
			// connections reach another server.
			tr.conns.track(tr.remote)
		}
		tr.tier.partUp()
	} else {
		tr.tier.flush() // a resubscription we did not see fail
	}
	return true
}

// downLocked marks an up tracker down. Called with tr.mu held.
func (tr *tracker) downLocked() {
	tr.up = false
	tr.tier.partDown()
	if tr.conns != nil {
		tr.conns.track("") // after: the tier is down already
	}
}

// setDown marks the tracker down, for cause err (nil when it is closed).
func (tr *tracker) setDown(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if err != nil {
		tr.lastErr = err
		var rerr redis.Error
		if errors.As(err, &rerr) && !redis.IsLoadingError(err) {
			tr.refused = err
		}
	}
	if tr.up {
		tr.downLocked()
		if err != nil && tr.ctx.Err() == nil {
			tr.tier.logf("%s invalidation connection lost (%v); reading from the shared store until it is back", tr.name(), err)
		}
	}
}

// wait implements invalidationChannel.
func (tr *tracker) wait(ctx context.Context) error {
	for {
		tr.mu.Lock()
		refused, lastErr := tr.refused, tr.lastErr
		tr.mu.Unlock()
		if refused != nil {
			return fmt.Errorf("stores: local tier: %s refused CLIENT TRACKING ... BCAST (Redis 6 or later is needed, and an ACL allowing it): %w", tr.name(), refused)
		}
		select {
		case <-tr.ready:
			return nil
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("stores: local tier: %s invalidation connection not up: %w (%v)", tr.name(), ctx.Err(), lastErr)
			}
			return fmt.Errorf("stores: local tier: %s invalidation connection not up: %w", tr.name(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// close stops the tracker and gives back its count in tier.down.
func (tr *tracker) close() {
	tr.cancel()
	tr.restart()
	tr.wg.Wait()
	_ = tr.client.Close()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !tr.up {
		tr.tier.down.Add(-1)
	}
	tr.up = true // counted out
	if tr.conns != nil {
		tr.conns.detach()
	}
}

// isTimeout reports whether err is a read that timed out.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// sleepCtx waits d, or until ctx ends (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// clusterTracking keeps one tracker per master of a Redis Cluster,
// following the slot map (listed every clusterRefresh). The tier answers
// from memory only while every current master's tracker is subscribed.
type clusterTracking struct {
	tier   *LocalTier
	client *redis.ClusterClient
	prefix string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	listed chan struct{} // closed once the masters were listed

	mu       sync.Mutex
	trackers map[string]*tracker // by master host:port
	lastErr  error
}

func newClusterTracking(t *LocalTier, c *redis.ClusterClient, prefix string) *clusterTracking {
	ct := &clusterTracking{tier: t, client: c, prefix: prefix, done: make(chan struct{}), listed: make(chan struct{}), trackers: map[string]*tracker{}}
	ct.ctx, ct.cancel = context.WithCancel(context.Background())
	t.down.Add(1) // until the masters are listed
	go ct.run()
	return ct
}

func (ct *clusterTracking) run() {
	defer close(ct.done)
	first := true
	tick := time.NewTicker(clusterRefresh)
	defer tick.Stop()
	for {
		if ct.refresh() && first {
			first = false
			close(ct.listed)
			ct.tier.down.Add(-1)
		}
		select {
		case <-ct.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// refresh lists the masters, tracks the new ones and stops tracking those
// that are masters no more (a new master is tracked, and so counted down,
// before an old one is let go). It reports whether the list was read.
func (ct *clusterTracking) refresh() bool {
	ctx, cancel := context.WithTimeout(ct.ctx, 2*time.Second)
	defer cancel()
	var mu sync.Mutex
	masters := map[string]*redis.Options{}
	err := ct.client.ForEachMaster(ctx, func(_ context.Context, n *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters[n.Options().Addr] = n.Options()
		return nil
	})
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if err != nil || len(masters) == 0 || ct.ctx.Err() != nil {
		if err != nil {
			ct.lastErr = err
		}
		return false
	}
	for addr, o := range masters {
		if ct.trackers[addr] == nil {
			tr := newTracker(ct.tier, o, ct.prefix, addr)
			ct.trackers[addr] = tr
			tr.start()
		}
	}
	for addr, tr := range ct.trackers {
		if masters[addr] == nil {
			delete(ct.trackers, addr)
			go tr.close()
		}
	}
	return true
}

// wait implements invalidationChannel.
func (ct *clusterTracking) wait(ctx context.Context) error {
	select {
	case <-ct.listed:
	case <-ctx.Done():
		ct.mu.Lock()
		err := ct.lastErr
		ct.mu.Unlock()
		return fmt.Errorf("stores: local tier: the cluster's masters not listed: %w (%v)", ctx.Err(), err)
	}
	ct.mu.Lock()
	trs := make([]*tracker, 0, len(ct.trackers))
	for _, tr := range ct.trackers {
		trs = append(trs, tr)
	}
	ct.mu.Unlock()
	for _, tr := range trs {
		if err := tr.wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (ct *clusterTracking) close() {
	ct.cancel()
	<-ct.done
	ct.mu.Lock()
	trs := ct.trackers
	ct.trackers = nil
	ct.mu.Unlock()
	var wg sync.WaitGroup
	for _, tr := range trs {
		wg.Add(1)
		go func() { defer wg.Done(); tr.close() }()
	}
	wg.Wait()
}

// getExpiring implements expiringReader: GET and PTTL in one round trip.
func (r *Redis) getExpiring(ctx context.Context, key string) (expiring, error) {
	if err := r.check(ctx); err != nil {
		return expiring{}, err
	}
	full := r.key(key)
	node, err := r.admit(ctx, "get", full)
	if err != nil {
		return expiring{}, err
	}
	var get *redis.StringCmd
	var pttl *redis.DurationCmd
	_, _ = r.cli().Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, full)
		pttl = p.PTTL(ctx, full)
		return nil
	})
	v, err := get.Bytes()
	err = r.done(ctx, node, full, err)
	if errors.Is(err, redis.Nil) {
		return expiring{}, ErrNotFound
	}
	if err != nil {
		return expiring{}, r.fail(ctx, "get", err)
	}
	return withPTTL(v, pttl), nil
}

// withPTTL pairs v with the answer of PTTL: -1 no expiry, -2 gone since
// or 0 (the copy is not kept), or the milliseconds left.
func withPTTL(v []byte, pttl *redis.DurationCmd) expiring {
	d, err := pttl.Result()
	switch {
	case err != nil:
		return expiring{v: v}
	case d == -1:
		return expiring{v: v, left: NoExpiry, known: true}
	case d <= 0:
		return expiring{v: v, known: true}
	}
	return expiring{v: v, left: d, known: true}
}

// getManyExpiring implements expiringReader: a GET and a PTTL per key in
// one pipeline. Like GetMany, on a cluster whose masters do not all
// answer it returns the values of those that did with a NodeError.
func (r *Redis) getManyExpiring(ctx context.Context, keys []string) (map[string]expiring, error) {
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string]expiring, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	gets := make([]*redis.StringCmd, len(keys))
	pttls := make([]*redis.DurationCmd, len(keys))
	add := func(p redis.Pipeliner, i int, full string) {
		gets[i] = p.Get(ctx, full)
		pttls[i] = p.PTTL(ctx, full)
	}
	result := func(i int) error {
		v, err := gets[i].Bytes()
		if err == nil {
			out[keys[i]] = withPTTL(v, pttls[i])
		} else if errors.Is(err, redis.Nil) {
			err = nil
		}
		return err
	}
	var err error
	if r.sharded {
		err = r.perKey(ctx, keys, add, result)
	} else {
		_, _ = r.cli().Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				add(p, i, r.key(k))
			}
			return nil
		})
		for i := range keys {
			if e := result(i); e != nil && err == nil {
				err = e
			}
		}
	}
	if err != nil {
		if errors.Is(err, ErrNodeDown) {
			return out, r.fail(ctx, "get many", err)
		}
		return nil, r.fail(ctx, "get many", err)
	}
	return out, nil
}
