package stores

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The per-server circuit breaker. A server fails when a call cannot talk to
// it (dial, authentication, I/O, a timeout, a malformed reply) or when
// every call to it has been slow, over half the store's Timeout, for
// memcachedSlowWindow: a server that answers just under the timeout costs
// every request that much, so it is treated like one that fails. After
// memcachedFailThreshold failures in a row (dalli's socket_max_failures)
// its breaker opens: calls for its keys fail at once, without I/O, with a
// *NodeError wrapping ErrNodeSkipped, and a prober checks it every
// memcachedProbeInterval on a new connection. The first quick answer closes
// the breaker: the server is used again about 200 ms after it is back,
// whatever the connection pools held and however little traffic there is.
//
// A server's keys are not moved to another while it is down (dalli's
// failover): they miss. A server that came back would otherwise serve what
// it held before, stale, and processes that saw the outage differently
// would disagree on where a key lives.
const (
	memcachedFailThreshold = 2
	memcachedProbeInterval = 200 * time.Millisecond
	memcachedSlowWindow    = time.Second
)

// mcServer is one server of a Memcached store: its transport, its
// circuit breaker and its namespace generation. It is safe for concurrent
// use.
type mcServer struct {
	addr   string // as configured: what the ring hashes, and what errors name
	node   mcNode
	genKey string

	gen          atomic.Pointer[string] // the generation seen last; nil until known
	clearPending atomic.Bool            // a Clear did not reach the server: replay it first
	owing        atomic.Bool            // owed holds keys: remove them first
	payMu        sync.Mutex             // held by the one call paying what is owed
	owedMu       sync.Mutex
	owed         []string // data keys whose removal a failed write owes (memcached_write.go)
	owedResets   int      // times owed was dropped for a pending Clear

	fails     atomic.Int32          // failures in a row
	slowSince atomic.Int64          // UnixNano of the first of a run of slow calls; 0 after a quick one
	down      atomic.Bool           // breaker open: calls skip the server; a prober checks it
	cause     atomic.Pointer[error] // the failure that opened the breaker

	failures atomic.Uint64 // calls that failed, for MemcachedServerStatus
	skipped  atomic.Uint64 // calls skipped while down
}

// MemcachedServerStatus is the state of one server of a [Memcached] store,
// as [Memcached.Servers] reports it.
type MemcachedServerStatus struct {
	// Addr is the server's host:port, as configured.
	Addr string
	// Down is true while the server's circuit breaker is open: its keys
	// miss and it is probed every 200 ms.
	Down bool
	// Failures counts the calls to the server that failed (errors and
	// slow answers), since the store was opened.
	Failures uint64
	// Skipped counts the calls not sent to the server while it was down.
	Skipped uint64
}

// Servers returns the state of each server, in the order of
// MemcachedConfig.Servers.
func (m *Memcached) Servers() []MemcachedServerStatus {
	out := make([]MemcachedServerStatus, len(m.servers))
	for i, s := range m.servers {
		out[i] = MemcachedServerStatus{Addr: s.addr, Down: s.down.Load(), Failures: s.failures.Load(), Skipped: s.skipped.Load()}
	}
	return out
}

// pick returns the server that holds key.
func (m *Memcached) pick(key string) *mcServer {
	if len(m.servers) == 1 {
		return m.servers[0]
	}
	return m.servers[m.ring.Pick(key)]
}

// usable returns an error wrapping ErrNodeSkipped and the failure that
// opened the breaker (ErrAuth for refused credentials, say) when s's
// breaker is open.
func (m *Memcached) usable(s *mcServer) error {
	if !s.down.Load() {
		return nil
	}
	s.skipped.Add(1)
	if c := s.cause.Load(); c != nil {
		return fmt.Errorf("%w: %w", ErrNodeSkipped, *c)
	}
	return ErrNodeSkipped
}

// observe feeds s's breaker with the outcome of a call that started at t0.
func (m *Memcached) observe(ctx context.Context, s *mcServer, t0 time.Time, err error) {
	took := time.Since(t0)
	slow := took >= m.slow
	switch {
	case err == nil || mcAnswered(err):
		if slow {
			m.slowCall(s, t0)
			return
		}
		if s.fails.Load() != 0 {
			s.fails.Store(0)
		}
		if s.slowSince.Load() != 0 {
			s.slowSince.Store(0)
		}
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller gave up: that says nothing about the server. (A
		// deadline that passed does: the server did not answer in the
		// time the caller had.)
	default:
		s.failures.Add(1)
		if s.fails.Add(1) >= memcachedFailThreshold {
			m.trip(s, err)
		}
	}
}

// slowCall records a call that answered, slowly: the breaker opens once
// every call has been slow for memcachedSlowWindow.
func (m *Memcached) slowCall(s *mcServer, t0 time.Time) {
	now := t0.UnixNano()
	first := s.slowSince.Load()
	if first == 0 {
		s.slowSince.CompareAndSwap(0, now)
		return
	}
	if now-first >= int64(memcachedSlowWindow) {
		s.failures.Add(1)
		m.trip(s, fmt.Errorf("every call slower than %v for %v", m.slow, time.Duration(now-first).Round(time.Millisecond)))
	}
}

// trip opens s's breaker, once, and starts its prober.
func (m *Memcached) trip(s *mcServer, cause error) {
	if s.down.Load() {
		return
	}
	s.cause.Store(&cause)
	if !s.down.CompareAndSwap(false, true) {
		return
	}
	m.logf("stores: memcached %s failed; skipping it until it answers again: %v", s.addr, cause)
	m.probeMu.Lock()
	defer m.probeMu.Unlock()
	if m.probeStop {
		return
	}
	m.probes.Add(1)
	go m.probeLoop(s)
}

// probeLoop checks s on a new connection every memcachedProbeInterval until
// it answers quickly, then replays a Clear it missed, makes the removals
// failed writes owe it, and closes its breaker.
// It ends early when the store is closed.
func (m *Memcached) probeLoop(s *mcServer) {
	defer m.probes.Done()
	tick := time.NewTicker(memcachedProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
		t0 := time.Now()
		err := s.node.probe(ctx)
		if err == nil && time.Since(t0) < m.slow && s.clearPending.Load() {
			err = m.replayClear(ctx, s)
		}
		if err == nil && time.Since(t0) < m.slow && s.owing.Load() {
			err = m.payOwed(ctx, s)
		}
		cancel()
		if err == nil && time.Since(t0) < m.slow {
			s.fails.Store(0)
			s.slowSince.Store(0)
			s.down.Store(false)
			m.logf("stores: memcached %s answers again; using it", s.addr)
			return
		}
	}
}

// stopProbes ends every prober and waits for them.
func (m *Memcached) stopProbes() {
	m.probeMu.Lock()
	m.probeStop = true
	m.probeMu.Unlock()
	close(m.quit)
	m.probes.Wait()
}

// othersUp reports whether a server other than the failed ones has its
// breaker closed.
func (m *Memcached) othersUp(failed ...*mcServer) bool {
	for _, s := range m.servers {
		if !s.down.Load() && !containsServer(failed, s) {
			return true
		}
	}
	return false
}

func containsServer(list []*mcServer, s *mcServer) bool {
	for _, t := range list {
		if t == s {
			return true
		}
	}
	return false
}

// serverErr shapes the error of op on s: a *NodeError while other servers
// answer and err says s could not be used, a plain error otherwise (every
// server down, the server's own answer, the caller's context). keys are the
// caller's keys of a many-key call.
func (m *Memcached) serverErr(op string, s *mcServer, keys []string, err error) error {
	if !serverFault(err) {
		return m.fail(op, err)
	}
	if m.othersUp(s) {
		return &NodeError{Node: s.addr, Keys: keys, Err: fmt.Errorf("memcached %s: %w", op, err)}
	}
	return fmt.Errorf("stores: memcached %s on %s: %w", op, s.addr, err)
}

// serverFault reports whether err says the server could not be used (as
// opposed to its answer, the caller's cancellation or a closed store).
func serverFault(err error) bool {
	return !mcAnswered(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrClosed)
}

// fail wraps an error with the operation. A miss is ErrNotFound.
func (m *Memcached) fail(op string, err error) error {
	if errors.Is(err, errMCMiss) {
		return ErrNotFound
	}
	return fmt.Errorf("stores: memcached %s: %w", op, err)
}

// serverGroup is the keys of a many-key call that one server holds: their
// indexes in the call's key list.
type serverGroup struct {
	s   *mcServer
	idx []int
}

// group splits keys by server, in the order of the servers.
func (m *Memcached) group(keys []string) []serverGroup {
	if len(m.servers) == 1 {
		idx := make([]int, len(keys))
		for i := range idx {
			idx[i] = i
		}
		return []serverGroup{{m.servers[0], idx}}
	}
	by := make([][]int, len(m.servers))
	for i, k := range keys {
		n := m.ring.Pick(k)
		by[n] = append(by[n], i)
	}
	out := make([]serverGroup, 0, len(m.servers))
	for n, idx := range by {
		if len(idx) > 0 {
			out = append(out, serverGroup{m.servers[n], idx})
		}
	}
	return out
}

// eachServer runs fn for every group, concurrently when there are
// several, and combines the errors: one *NodeError per server that could
// not be used while other servers answer (errors.Join of them), or a plain
// error when no server answered or an error is not a server's failure.
func (m *Memcached) eachServer(op string, groups []serverGroup, keys []string, fn func(g serverGroup) error) error {
	errs := make([]error, len(groups))
	if len(groups) == 1 {
		errs[0] = fn(groups[0])
	} else {
		var wg sync.WaitGroup
		for i, g := range groups {
			wg.Go(func() { errs[i] = fn(g) })
		}
		wg.Wait()
	}
	var failed []*mcServer
	var plain []error
	for i, err := range errs {
		switch {
		case err == nil:
		case !serverFault(err):
			plain = append(plain, err)
		default:
			failed = append(failed, groups[i].s)
		}
	}
	if len(failed) == 0 && len(plain) == 0 {
		return nil
	}
	if len(plain) > 0 || !m.othersUp(failed...) {
		all := make([]error, 0, len(errs))
		for i, err := range errs {
			if err != nil {
				all = append(all, fmt.Errorf("%s: %w", groups[i].s.addr, err))
			}
		}
		return m.fail(op, errors.Join(all...))
	}
	nodeErrs := make([]error, 0, len(failed))
	for i, err := range errs {
		if err == nil {
			continue
		}
		held := make([]string, len(groups[i].idx))
		for j, k := range groups[i].idx {
			held[j] = keys[k]
		}
		nodeErrs = append(nodeErrs, &NodeError{Node: groups[i].s.addr, Keys: held, Err: fmt.Errorf("memcached %s: %w", op, err)})
	}
	if len(nodeErrs) == 1 {
		return nodeErrs[0]
	}
	return errors.Join(nodeErrs...)
}
