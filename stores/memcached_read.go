package stores

import (
	"context"
	"errors"
	"time"

	"github.com/echocache/echocache/internal/mcbin"
)

// getOp is Get: one multi-get of the key and its server's generation.
func (m *Memcached) getOp(ctx context.Context, key string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	s := m.pick(key)
	var (
		val   []byte
		found bool
	)
	err := m.readServer(ctx, s, []string{key}, func(_ int, v []byte) { val, found = v, true })
	if err != nil {
		return nil, m.serverErr("get", s, nil, err)
	}
	if !found {
		return nil, ErrNotFound
	}
	return val, nil
}

// getManyOp is GetMany: one multi-get per server, concurrently, each with
// that server's generation. The values of the servers that answered are
// returned even when another failed.
func (m *Memcached) getManyOp(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	uniq := dedupe(keys)
	groups := m.group(uniq)
	vals := make([][]byte, len(uniq))
	have := make([]bool, len(uniq))
	err := m.eachServer("get many", groups, uniq, func(g serverGroup) error {
		sub := make([]string, len(g.idx))
		for j, i := range g.idx {
			sub[j] = uniq[i]
		}
		// Each server writes only its own indexes: no lock needed.
		return m.readServer(ctx, g.s, sub, func(j int, v []byte) { vals[g.idx[j]], have[g.idx[j]] = v, true })
	})
	for i, k := range uniq {
		if have[i] {
			out[k] = vals[i]
		}
	}
	if err != nil && !errors.Is(err, ErrNodeDown) {
		return nil, err
	}
	return out, err // with ErrNodeDown: the values of the servers that answered
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
// trip together with s's generation, and calls found(i, value) for each
// hit once the generation is confirmed. When the generation moved since it
// was seen last (a Clear by another process), it reads again under the new
// one; when the server has none (it restarted, or lost it), it creates one,
// and every key misses.
func (m *Memcached) readServer(ctx context.Context, s *mcServer, keys []string, found func(i int, v []byte)) error {
	gen, err := m.genFor(ctx, s)
	if err != nil {
		return err
	}
	n := len(keys)
	names := make([]string, n+1)
	names[n] = s.genKey
	items := make([]mcbin.Item, n)
	hit := make([]bool, n)
	for attempt := 0; ; attempt++ {
		for i, k := range keys {
			names[i] = m.dataKey(gen, k)
		}
		clear(hit)
		var cur []byte
		haveGen := false
		if err := m.usable(s); err != nil {
			return err
		}
		t0 := time.Now()
		err := s.node.getMulti(ctx, names, func(i int, it mcbin.Item) {
			if i == n {
				cur, haveGen = it.Value, true
				return
			}
			items[i], hit[i] = it, true
		})
		m.observe(ctx, s, t0, err)
		if err != nil {
			return err
		}
		if !haveGen {
			_, err := m.createGen(ctx, s)
			return err
		}
		if string(cur) != gen {
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
		for i := range keys {
			if !hit[i] {
				continue
			}
			it := items[i]
			if it.Flags&mcManifestFlag == 0 {
				found(i, it.Value)
				continue
			}
			v, ok, err := m.readChunked(ctx, s, gen, it.Value)
			if err != nil {
				return err
			}
			if ok {
				found(i, v)
			}
		}
		return nil
	}
}
