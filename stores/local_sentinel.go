package stores

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// A local tier in front of a Sentinel-managed master (redis+sentinel://,
// RedisConfig.Options with MasterName) must hear the announcements of the
// master the sentinels name now, and keep only copies read from it. After
// a failover that leaves the old master running (SENTINEL FAILOVER, a
// partition that heals), that server still answers as a master, ROLE
// included, for several seconds, until a sentinel reconfigures it as a
// replica; and a client that asks a sentinel which has not yet heard of
// the switch is sent there. A tracking connection on it hears nothing of
// the writes on the new master, and values read from it are not announced
// by the new master. Three parts keep the tier honest:
//
//   - sentinelWatch listens to +switch-master on every configured sentinel
//     and reads SENTINEL MASTER from each after it subscribes and after
//     each switch it announces. It names the master of the newest
//     configuration it hears (the highest config-epoch), and none while no
//     sentinel answers.
//   - The tracker dials exactly that master (never the address go-redis's
//     own sentinel gives) and counts as up only while subscribed to it:
//     every change of the named master takes it down, which drops every
//     copy, and makes it dial the new one.
//   - masterConns counts the connections of the store's own client by the
//     server they reach: while one of them reaches a server other than the
//     tracked master (go-redis still on the old master, having asked a
//     sentinel that lags), the tier neither serves nor keeps copies, since
//     what the store reads there is not announced on the tracked master.
//     When the last such connection is closed (go-redis closes them when
//     its sentinel announces the switch; the sentinels' reconfiguration of
//     the old master ends them too) the tier drops every copy and is used
//     again.

// setSentinel records fo, the options of the sentinel-backed client the
// store built, counts that client's connections by server (for a local
// tier: see masterConns), and has the client replaced by a new one once a
// master answers again after a failed dial (redis_redial.go).
func (r *Redis) setSentinel(fo *redis.FailoverOptions) {
	r.sentinel = fo
	r.conns = &masterConns{live: map[string]int{}}
	if c, ok := r.client.(*redis.Client); ok {
		c.AddHook(r.conns)
		r.redial = newRedisRedial(c, func(*redis.Options) *redis.Client {
			n := redis.NewFailoverClient(fo)
			n.AddHook(r.conns)
			return n
		})
	}
}

// sentinelDialer returns what dials a redis server of fo: its Dialer, or
// a TCP dialer with its DialTimeout and TLSConfig, as go-redis's failover
// client dials the master once it knows its address.
func sentinelDialer(fo *redis.FailoverOptions) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if fo.Dialer != nil {
		return fo.Dialer
	}
	return redis.NewDialer(&redis.Options{DialTimeout: fo.DialTimeout, TLSConfig: fo.TLSConfig})
}

// sentinelWatch names the master a tracker must listen to (see above).
type sentinelWatch struct {
	fo *redis.FailoverOptions
	tr *tracker

	// mu orders the news of the sentinels. Held while calling the
	// tracker; the tracker never takes it.
	mu      sync.Mutex
	views   []sentinelView // one per fo.SentinelAddrs
	master  string         // the master named now; "" none
	lastErr error          // why the last sentinel that failed did
}

// sentinelView is what one sentinel says of the master.
type sentinelView struct {
	up    bool   // subscribed to +switch-master, and the master read since
	addr  string // host:port of the master it names
	epoch int64  // the config-epoch of that configuration
}

func newSentinelWatch(fo *redis.FailoverOptions, tr *tracker) *sentinelWatch {
	return &sentinelWatch{fo: fo, tr: tr, views: make([]sentinelView, len(fo.SentinelAddrs))}
}

// newestMaster returns the master named by the newest configuration among
// the sentinels that are up: the highest config-epoch, current on a tie
// (two sentinels at one epoch that disagree), "" when none is up.
func newestMaster(views []sentinelView, current string) string {
	best := -1
	for i, v := range views {
		switch {
		case !v.up:
		case best < 0 || v.epoch > views[best].epoch:
			best = i
		case v.epoch == views[best].epoch && v.addr == current:
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return views[best].addr
}

// set records what sentinel i says now and points the tracker at the
// newest master (under w.mu, so that two sentinels' news reach it in
// order).
func (w *sentinelWatch) set(i int, v sentinelView, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.views[i] = v
	if err != nil {
		w.lastErr = err
	}
	master := newestMaster(w.views, w.master)
	if master == w.master {
		return
	}
	var none error // why no master is named
	switch {
	case master == "":
		none = fmt.Errorf("no sentinel of %q answers: %w", w.fo.MasterName, w.lastErr)
		w.tr.tier.logf("%v; local copies unused until one does", none)
	case w.master != "":
		w.tr.tier.logf("sentinel failover of %q: master %s, was %s; local copies dropped", w.fo.MasterName, master, w.master)
	}
	w.master = master
	w.tr.setTarget(master, none)
}

// run follows every sentinel until ctx ends.
func (w *sentinelWatch) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range w.views {
		wg.Go(func() { w.follow(ctx, i) })
	}
	wg.Wait()
}

// follow listens to sentinel i until ctx ends, again after each failure.
func (w *sentinelWatch) follow(ctx context.Context, i int) {
	var backoff time.Duration
	for ctx.Err() == nil {
		subscribed, err := w.listen(ctx, i)
		if ctx.Err() != nil {
			return
		}
		w.set(i, sentinelView{}, fmt.Errorf("sentinel %s: %w", w.fo.SentinelAddrs[i], err))
		if subscribed {
			backoff = 0
		}
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(max(2*backoff, 50*time.Millisecond), trackBackoffMax)
	}
}

// listen follows +switch-master on sentinel i, reading the master it names
// once subscribed and after each switch of fo.MasterName, until the
// connection fails or stays silent for two ping intervals. It reports
// whether it subscribed, and why it ended.
func (w *sentinelWatch) listen(ctx context.Context, i int) (subscribed bool, err error) {
	fo := w.fo
	sc := redis.NewSentinelClient(&redis.Options{
		Addr: fo.SentinelAddrs[i], Username: fo.SentinelUsername, Password: fo.SentinelPassword,
		Dialer: fo.Dialer, TLSConfig: fo.TLSConfig, Protocol: 2,
		DialTimeout: fo.DialTimeout, ReadTimeout: fo.ReadTimeout, WriteTimeout: fo.WriteTimeout,
		PoolSize: 1, MaxRetries: -1, DialerRetries: 1,
	})
	defer sc.Close()
	ps := sc.Subscribe(ctx, "+switch-master")
	defer ps.Close()
	last := time.Now()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, trackPing)
		if err != nil {
			if isTimeout(err) && time.Since(last) < 2*trackPing {
				if err = ps.Ping(ctx); err == nil {
					continue
				}
			}
			return subscribed, err
		}
		last = time.Now()
		switch m := msg.(type) {
		case *redis.Subscription:
			// Read after subscribing: a switch after the read is announced.
			subscribed = true
			if err := w.read(ctx, sc, i); err != nil {
				return subscribed, err
			}
		case *redis.Message:
			// "<master name> <old ip> <old port> <new ip> <new port>"
			if f := strings.Fields(m.Payload); len(f) > 0 && f[0] == fo.MasterName {
				if err := w.read(ctx, sc, i); err != nil {
					return subscribed, err
				}
			}
		}
	}
	return subscribed, ctx.Err()
}

// read asks sentinel i which master it names (SENTINEL MASTER: ip, port,
// config-epoch) and records it.
func (w *sentinelWatch) read(ctx context.Context, sc *redis.SentinelClient, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*trackPing)
	defer cancel()
	m, err := sc.Master(ctx, w.fo.MasterName).Result()
	if err != nil {
		return err
	}
	epoch, err := strconv.ParseInt(m["config-epoch"], 10, 64)
	if err != nil || m["ip"] == "" || m["port"] == "" {
		return fmt.Errorf("SENTINEL MASTER %s: no ip, port and config-epoch in %v", w.fo.MasterName, m)
	}
	w.set(i, sentinelView{up: true, addr: net.JoinHostPort(m["ip"], m["port"]), epoch: epoch}, nil)
	return nil
}

// masterConns counts the connections of a sentinel-backed store's own
// client by the server they reach (a go-redis hook on the client), so that
// a local tier is used only while each reaches the master it tracks.
type masterConns struct {
	mu      sync.Mutex
	live    map[string]int // by remote address
	tier    *LocalTier     // the tier in front of the store, once there is one
	tracked string         // remote address of the tracked master; "" while the tracker is down
	stray   bool           // a live connection reaches another server: counted in tier.down
}

// attach puts t in front of the store's connections; a store has one tier.
func (mc *masterConns) attach(t *LocalTier) error {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.tier != nil {
		return errors.New("stores: local tier: the redis store has a local tier already")
	}
	mc.tier = t
	return nil
}

// detach undoes attach, when the tier is closed.
func (mc *masterConns) detach() {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	mc.tracked = ""
	mc.update()
	mc.tier = nil
}

// track makes addr, the remote address of the tracker's connection, the
// one every connection must reach ("" while the tracker is down, which
// keeps the tier from answering anyway).
func (mc *masterConns) track(addr string) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	mc.tracked = addr
	mc.update()
}

// update moves the tier's down count when the connections start or stop
// reaching a server other than the tracked one. Called with mc.mu held.
func (mc *masterConns) update() {
	var other string
	if mc.tier != nil && mc.tracked != "" {
		for a := range mc.live {
			if a != mc.tracked {
				other = a
				break
			}
		}
	}
	if stray := other != ""; stray != mc.stray {
		mc.stray = stray
		if stray {
			mc.tier.partDown()
			mc.tier.logf("the redis store has connections to %s, not to the tracked master %s; local copies unused until they are closed", other, mc.tracked)
		} else {
			mc.tier.partUp()
		}
	}
}

// DialHook implements redis.Hook: it counts each new connection.
func (mc *masterConns) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		cn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return mc.add(cn), nil
	}
}

// ProcessHook implements redis.Hook.
func (mc *masterConns) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

// ProcessPipelineHook implements redis.Hook.
func (mc *masterConns) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// add counts cn until it is closed. The connection is counted before
// go-redis can send anything on it.
func (mc *masterConns) add(cn net.Conn) net.Conn {
	addr := cn.RemoteAddr().String()
	mc.mu.Lock()
	mc.live[addr]++
	mc.update()
	mc.mu.Unlock()
	c := &countedConn{Conn: cn, mc: mc, addr: addr}
	if _, ok := cn.(syscall.Conn); ok {
		// go-redis checks an idle TCP connection's health through its
		// file descriptor before reusing it.
		return countedSysConn{c}
	}
	return c
}

func (mc *masterConns) remove(addr string) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.live[addr]--; mc.live[addr] <= 0 {
		delete(mc.live, addr)
	}
	mc.update()
}

// countedConn is a connection counted in a masterConns until closed.
type countedConn struct {
	net.Conn
	mc     *masterConns
	addr   string
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if !c.closed.Swap(true) {
		c.mc.remove(c.addr)
	}
	return c.Conn.Close()
}

// countedSysConn is a countedConn on a connection with a file descriptor.
type countedSysConn struct{ *countedConn }

func (c countedSysConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}
