package stores

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// A go-redis connection pool that failed to dial its server PoolSize times
// gives up dialling for its callers: it returns the last dial error at
// once, and dials on its own only once a second until a dial succeeds
// (go-redis's pool.tryDial). A server that comes back can so go unused for
// a second, whoever probes it. A store on a single server, with a client
// it built, does not wait for that: once a call fails to dial, the store
// dials the server itself every redisRedialInterval, and when the server
// accepts a connection it replaces its client with a new one, whose pool
// has given up nothing. The old client is closed redisRetireAfter later,
// when the calls it was serving are over.
//
// A store on a Sentinel-managed master does the same: its client dials
// whatever master the sentinels name, so once a dial succeeds (the killed
// master is back, or a sentinel announced its promoted replica) the store
// replaces its client with a new sentinel-backed one. Without it, the
// promoted replica went unused for up to a second after the announcement.
const (
	redisRedialInterval = 50 * time.Millisecond
	redisRetireAfter    = 5 * time.Second
)

// redisRedial is the client of a single-server store that it built, and
// the watch of its server after a failed dial. It is safe for concurrent
// use.
type redisRedial struct {
	cur      atomic.Pointer[redis.Client]
	watching atomic.Bool
	build    func(*redis.Options) *redis.Client // a new client like cur, from cur's options

	mu      sync.Mutex
	closed  bool
	quit    chan struct{}
	wg      sync.WaitGroup                // the watch
	retired map[*redis.Client]*time.Timer // replaced clients, and the timers that close them
}

// newRedisRedial watches c, a client of one server; build, when not nil,
// builds its replacement (a sentinel-backed client), else redis.NewClient
// does with c's options.
func newRedisRedial(c *redis.Client, build func(*redis.Options) *redis.Client) *redisRedial {
	if build == nil {
		build = redis.NewClient
	}
	w := &redisRedial{quit: make(chan struct{}), retired: map[*redis.Client]*time.Timer{}, build: build}
	w.cur.Store(c)
	return w
}

// failed looks at the error of a call: a failed dial starts the watch.
func (w *redisRedial) failed(err error) {
	var op *net.OpError
	if w.watching.Load() || !errors.As(err, &op) || op.Op != "dial" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || !w.watching.CompareAndSwap(false, true) {
		return
	}
	w.wg.Go(w.watch)
}

// watch dials the server every redisRedialInterval until it accepts a
// connection, then replaces the client.
func (w *redisRedial) watch() {
	defer w.watching.Store(false)
	o := *w.cur.Load().Options()
	dial := o.Dialer // set by go-redis: the client's own network, address and TLS
	tick := time.NewTicker(redisRedialInterval)
	defer tick.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(o.DialTimeout, redisRedialInterval))
		conn, err := dial(ctx, o.Network, o.Addr)
		cancel()
		if err == nil {
			_ = conn.Close()
			w.replace(&o)
			return
		}
	}
}

// replace puts a new client built from o in place of the current one.
func (w *redisRedial) replace(o *redis.Options) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	old := w.cur.Swap(w.build(o))
	w.retired[old] = time.AfterFunc(redisRetireAfter, func() { w.retire(old) })
}

// retire closes a replaced client.
func (w *redisRedial) retire(c *redis.Client) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.retired[c]; ok {
		delete(w.retired, c)
		_ = c.Close()
	}
}

// close ends the watch and closes every client.
func (w *redisRedial) close() error {
	w.mu.Lock()
	w.closed = true
	close(w.quit)
	retired := w.retired
	w.retired = nil
	w.mu.Unlock()
	w.wg.Wait()
	for c, t := range retired {
		t.Stop()
		_ = c.Close()
	}
	return w.cur.Load().Close()
}
