package stores

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/echocache/echocache/internal/mcbin"
)

// getOp is Get: one multi-get of the key and its server's generation.
func (m *Memcached) getOp(ctx context.Context, key string) ([]byte, error) {
	v, _, err := m.get(ctx, key)
	return v, err
}

// get reads key, and the absolute time its entry expires as its flags
// record it (Unix seconds; 0 for none, see memcached_expiry.go).
func (m *Memcached) get(ctx context.Context, key string) ([]byte, uint32, error) {
	if err := m.check(ctx); err != nil {
		return nil, 0, err
	}
	s := m.pick(key)
	var (
		val   []byte
		exp   uint32
		found bool
	)
	err := m.readServer(ctx, s, []string{key}, func(_ int, v []byte, e uint32) { val, exp, found = v, e, true })
	if err != nil {
		return nil, 0, m.serverErr("get", s, nil, err)
	}
	if !found {
		return nil, 0, ErrNotFound
	}
	return val, exp, nil
}

// getManyOp is GetMany: one multi-get per server, concurrently, each with
// that server's generation. The values of the servers that answered are
// returned even when another failed.
func (m *Memcached) getManyOp(ctx context.Context, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	err := m.getMany(ctx, keys, func(k string, v []byte, _ uint32) { out[k] = v })
	if err != nil && !errors.Is(err, ErrNodeDown) {
		return nil, err
	}
	return out, err // with ErrNodeDown: the values of the servers that answered
}

// getMany reads keys like GetMany and calls put, in the caller's
// goroutine, for each key found with its value and the absolute time its
// entry expires (as get). With an error wrapping ErrNodeDown, put has been
// called for the servers that answered.
func (m *Memcached) getMany(ctx context.Context, keys []string, put func(k string, v []byte, exp uint32)) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	uniq := dedupe(keys)
	groups := m.group(uniq)
	vals := make([][]byte, len(uniq))
	exps := make([]uint32, len(uniq))
	have := make([]bool, len(uniq))
	err := m.eachServer("get many", groups, uniq, func(g serverGroup) error {
		sub := make([]string, len(g.idx))
		for j, i := range g.idx {
			sub[j] = uniq[i]
		}
		// Each server writes only its own indexes: no lock needed.
		return m.readServer(ctx, g.s, sub, func(j int, v []byte, exp uint32) {
			i := g.idx[j]
			vals[i], exps[i], have[i] = v, exp, true
		})
	})
	for i, k := range uniq {
		if have[i] {
			put(k, vals[i], exps[i])
		}
	}
	return err
}

// dedupe returns keys without repeats, in order (keys itself when it has
// none).
func dedupe(keys []string) []string {
	if len(keys) < 2 {
		return keys
	}
	seen := make(map[string]struct{}, len(keys))
	for i, k := range keys {
		if _, dup := seen[k]; dup {
			out := append([]string(nil), keys[:i]...)
			for _, k := range keys[i+1:] {
				if _, dup := seen[k]; !dup {
					seen[k] = struct{}{}
					out = append(out, k)
				}
			}
			return out
		}
		seen[k] = struct{}{}
	}
	return keys
}

// readServer reads keys (distinct caller keys, all held by s) in one round
// trip together with s's generation, and calls found(i, value, exp) for
// each hit once the generation is confirmed, exp being the absolute time
// the entry expires as its flags record it (Unix seconds, 0 for none). When the generation moved since it
// was seen last (a Clear by another process), it reads again under the new
// one; when the server has none (it restarted, or lost it), it creates one,
// and every key misses.
func (m *Memcached) readServer(ctx context.Context, s *mcServer, keys []string, found func(i int, v []byte, exp uint32)) error {
	gen, err := m.genFor(ctx, s)
	if err != nil {
		return err
	}
	n := len(keys)
	r := getReadScratch(n + 1)
	defer r.release()
	names, items := r.names, r.items
	names[n] = s.genKey
	for attempt := 0; ; attempt++ {
		for i, k := range keys {
			names[i] = m.dataKey(gen, k)
		}
		clear(items)
		if err := m.usable(s); err != nil {
			return err
		}
		t0 := time.Now()
		err := s.node.getMulti(ctx, names, items)
		m.observe(ctx, s, t0, err)
		if err != nil {
			return err
		}
		if items[n].Key == "" {
			_, err := m.createGen(ctx, s)
			return err
		}
		if cur := items[n].Value; string(cur) != gen {
			g, ok := m.storeGen(s, cur)
			if !ok {
				_, err := m.createGen(ctx, s)
				return err
			}
			if g != gen {
				if attempt > 0 {
					return nil // moved twice during one read: everything misses
				}
				gen = g
				continue
			}
		}
		for i, it := range items[:n] {
			if it.Key == "" {
				continue // a miss
			}
			exp := it.Flags & mcExpiryMask
			if it.Flags&mcManifestFlag == 0 {
				found(i, it.Value, exp)
				continue
			}
			v, ok, err := m.readChunked(ctx, s, gen, it.Value)
			if err != nil {
				return err
			}
			if ok {
				found(i, v, exp)
			}
		}
		return nil
	}
}

// readScratch is the key names and items of one readServer call, reused
// across calls (through readScratches) so that a read allocates only its
// names and values.
type readScratch struct {
	names []string
	items []mcbin.Item
}

// maxKeptScratch is the most keys a readScratch keeps room for once
// released: a larger one (a GetMany of many keys) is left to the GC.
const maxKeptScratch = 64

var readScratches = sync.Pool{New: func() any { return new(readScratch) }}

// getReadScratch returns a readScratch with room for n names and n zero
// items.
func getReadScratch(n int) *readScratch {
	r := readScratches.Get().(*readScratch)
	if cap(r.names) < n {
		r.names = make([]string, n)
		r.items = make([]mcbin.Item, n)
	}
	r.names, r.items = r.names[:n], r.items[:n]
	return r
}

// release clears r, so that it keeps no key or value alive, and returns it
// for reuse.
func (r *readScratch) release() {
	clear(r.names)
	clear(r.items)
	if cap(r.names) <= maxKeptScratch {
		readScratches.Put(r)
	}
}
