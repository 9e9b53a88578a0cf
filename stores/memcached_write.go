package stores

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/echocache/echocache/internal/mcbin"
)

// tooLarge refuses a value longer than the store's largest.
func (m *Memcached) tooLarge(value []byte) error {
	if len(value) > m.maxValue {
		return fmt.Errorf("stores: memcached: %w: %d bytes, limit %d", ErrTooLarge, len(value), m.maxValue)
	}
	return nil
}

// items returns what writing value under key (data key dk) takes: one item,
// or its chunks and then its manifest (memcached_chunks.go).
func (m *Memcached) items(gen, dk string, value []byte, exp uint32, now time.Time) []mcbin.Item {
	if len(value) <= m.chunkSize {
		return []mcbin.Item{{Key: dk, Value: value, Flags: expiryFlags(exp, now), Expiration: exp}}
	}
	return m.chunkedItems(gen, dk, value, exp, now)
}

// write stores items on s: the chunks first, in one round trip, then the
// entry (a value or a manifest) with add when add is set. It reports
// whether the entry was stored (false only when add found the key taken).
func (m *Memcached) write(ctx context.Context, s *mcServer, items []mcbin.Item, add bool) (bool, error) {
	if err := m.usable(s); err != nil {
		return false, err
	}
	entry := items[len(items)-1]
	t0 := time.Now()
	var err error
	if chunks := items[:len(items)-1]; len(chunks) > 0 {
		err = s.node.setMulti(ctx, chunks)
	}
	stored := false
	if err == nil {
		if add {
			stored, err = s.node.add(ctx, entry)
		} else {
			err = s.node.set(ctx, entry)
			stored = err == nil
		}
	}
	m.observe(ctx, s, t0, err)
	return stored, err
}

// setOp is Set, in the generation of the key's server seen last.
func (m *Memcached) setOp(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	s := m.pick(key)
	refused := m.tooLarge(value)
	gen, err := m.genFor(ctx, s)
	if err != nil {
		m.oweInLastGen(s, err, key)
		if refused != nil {
			// Refused, and the old value cannot be reached to remove it.
			return fmt.Errorf("%w; removing the previous value: %v", refused, err)
		}
		return m.serverErr("set", s, nil, err)
	}
	dk := m.dataKey(gen, key)
	if refused != nil {
		return m.drop(ctx, s, refused, dk)
	}
	now := time.Now()
	if _, err := m.write(ctx, s, m.items(gen, dk, value, m.expiration(ttl, now), now), false); err != nil {
		return m.drop(ctx, s, m.serverErr("set", s, nil, err), dk)
	}
	return nil
}

// drop removes the data keys dks from s after a write of them failed with
// err, so that they do not keep the values the write was meant to replace
// (see Failed writes in the package doc). memcached already unlinks an item
// when it refuses a SET; the delete covers the refusals made here and the
// writes cut short on the network, and runs even when the write's context
// was cancelled half-way (bounded by the store's Timeout); the write waits
// for it while its context allows (dropAfterFailedWrite). It returns err,
// with the delete's own failure when there is one.
//
// When s cannot be reached (its breaker is open, or the delete fails on
// the way), the removal is owed: it is made before s serves anything
// again (by the prober, or by the next call that reads s's generation).
func (m *Memcached) drop(ctx context.Context, s *mcServer, err error, dks ...string) error {
	if m.usable(s) != nil {
		m.owe(s, dks)
		return err
	}
	derr := dropAfterFailedWrite(ctx, m.timeout, func(dctx context.Context) error {
		t0 := time.Now()
		derr := s.node.deleteMulti(dctx, dks)
		m.observe(dctx, s, t0, derr)
		if derr != nil && serverFault(derr) {
			m.owe(s, dks)
		}
		return derr
	})
	if derr != nil {
		return fmt.Errorf("%w; removing the previous value: %v", err, derr)
	}
	return err
}

// setManyOp is SetMany: per server, the chunks of every large value in one
// round trip, then every entry in one more (one in all without large
// values), servers concurrently. Every value is checked against the size
// limit before anything is written.
func (m *Memcached) setManyOp(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	keys := make([]string, 0, len(items))
	var refused error
	for k, v := range items {
		keys = append(keys, k)
		if refused == nil {
			refused = m.tooLarge(v)
		}
	}
	now := time.Now()
	exp := m.expiration(ttl, now)
	return m.eachServer("set many", m.group(keys), keys, func(g serverGroup) error {
		gen, err := m.genFor(ctx, g.s)
		if err != nil {
			held := make([]string, len(g.idx))
			for j, i := range g.idx {
				held[j] = keys[i]
			}
			m.oweInLastGen(g.s, err, held...)
			if refused != nil {
				return fmt.Errorf("%w; removing the previous values: %v", refused, err)
			}
			return err
		}
		dks := make([]string, len(g.idx))
		var chunks, entries []mcbin.Item
		for j, i := range g.idx {
			dks[j] = m.dataKey(gen, keys[i])
			if refused != nil {
				continue
			}
			its := m.items(gen, dks[j], items[keys[i]], exp, now)
			chunks = append(chunks, its[:len(its)-1]...)
			entries = append(entries, its[len(its)-1])
		}
		if refused != nil {
			// One value is refused: none is written and every key loses
			// its previous value.
			return m.drop(ctx, g.s, refused, dks...)
		}
		if err := m.usable(g.s); err != nil {
			return m.drop(ctx, g.s, err, dks...)
		}
		t0 := time.Now()
		if len(chunks) > 0 {
			err = g.s.node.setMulti(ctx, chunks)
		}
		if err == nil {
			err = g.s.node.setMulti(ctx, entries)
		}
		m.observe(ctx, g.s, t0, err)
		if err != nil {
			return m.drop(ctx, g.s, err, dks...)
		}
		return nil
	})
}

// addOp is Add, in the current generation of the key's server.
func (m *Memcached) addOp(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := m.check(ctx); err != nil {
		return false, err
	}
	if err := m.tooLarge(value); err != nil {
		return false, err
	}
	s := m.pick(key)
	gen, err := m.loadGen(ctx, s)
	if err != nil {
		return false, m.serverErr("add", s, nil, err)
	}
	now := time.Now()
	ok, err := m.write(ctx, s, m.items(gen, m.dataKey(gen, key), value, m.expiration(ttl, now), now), true)
	if err != nil {
		return false, m.serverErr("add", s, nil, err)
	}
	return ok, nil
}

// deleteManyOp is Delete and DeleteMany: per server, one round trip of
// deletes in its current generation (read first), servers concurrently.
func (m *Memcached) deleteManyOp(ctx context.Context, keys []string) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	keys = dedupe(keys)
	op := "delete many"
	if len(keys) == 1 {
		op = "delete"
	}
	err := m.eachServer(op, m.group(keys), keys, func(g serverGroup) error {
		gen, err := m.loadGen(ctx, g.s)
		if err != nil {
			return err
		}
		dks := make([]string, len(g.idx))
		for j, i := range g.idx {
			dks[j] = m.dataKey(gen, keys[i])
		}
		if err := m.usable(g.s); err != nil {
			return err
		}
		t0 := time.Now()
		err = g.s.node.deleteMulti(ctx, dks)
		m.observe(ctx, g.s, t0, err)
		return err
	})
	if len(keys) == 1 {
		var ne *NodeError
		if errors.As(err, &ne) {
			ne.Keys = nil // a one-key call
		}
	}
	return err
}

// memcachedMaxOwed bounds the removals owed to one server; past it, the
// server's Clear is pending instead (memcached_gen.go), which retires
// every entry it holds.
const memcachedMaxOwed = 4096

// owe records that the data keys dks must be removed from s before s
// serves anything again.
func (m *Memcached) owe(s *mcServer, dks []string) {
	s.owedMu.Lock()
	defer s.owedMu.Unlock()
	if len(s.owed)+len(dks) > memcachedMaxOwed {
		s.clearPending.Store(true)
		s.owed = nil
		s.owedResets++
		s.owing.Store(false)
		return
	}
	s.owed = append(s.owed, dks...)
	s.owing.Store(true)
}

// oweInLastGen records that keys, which a write could not store on s
// because s could not be used (err), must be removed from s in the
// generation seen last, when there is one. A server this process never
// reached has none: what it holds stays (see Failed writes).
func (m *Memcached) oweInLastGen(s *mcServer, err error, keys ...string) {
	g := s.gen.Load()
	if g == nil || !serverFault(err) {
		return
	}
	dks := make([]string, len(keys))
	for i, k := range keys {
		dks[i] = m.dataKey(*g, k)
	}
	m.owe(s, dks)
}

// payOwed makes the removals owed to s, without the breaker (the caller
// checks it, or is the prober). s keeps owing them until the delete
// succeeds, so that no read comes in between. One call at a time pays;
// the others wait for it and find nothing left to pay.
func (m *Memcached) payOwed(ctx context.Context, s *mcServer) error {
	s.payMu.Lock()
	defer s.payMu.Unlock()
	s.owedMu.Lock()
	dks, resets := slices.Clone(s.owed), s.owedResets
	s.owedMu.Unlock()
	if len(dks) == 0 {
		return nil
	}
	if err := s.node.deleteMulti(ctx, dks); err != nil {
		return err
	}
	s.owedMu.Lock()
	defer s.owedMu.Unlock()
	// What was owed since the copy stays owed. After a reset (a pending
	// Clear took over), the list holds only keys owed since: keep them all.
	if s.owedResets == resets {
		s.owed = s.owed[len(dks):]
	}
	if len(s.owed) == 0 {
		s.owed = nil
		s.owing.Store(false)
	}
	return nil
}
