package echocache

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of a Cache's counters since it was created.
type Stats struct {
	// Hits counts requests and calls answered from the cache.
	Hits uint64
	// Misses counts lookups that found nothing usable.
	Misses uint64
	// StaleHits counts stale entries served (stale-while-revalidate and
	// stale-if-error).
	StaleHits uint64
	// Stores counts entries written.
	Stores uint64
	// Bypasses counts responses or calls that were not cached, by reason
	// (BypassMethod, BypassSetCookie, BypassAuthorization...).
	Bypasses map[BypassReason]uint64
	// StoreErrors counts store calls that failed or were skipped by the
	// circuit breaker.
	StoreErrors uint64
}

// TotalBypasses returns the sum of s.Bypasses.
func (s Stats) TotalBypasses() uint64 {
	var n uint64
	for _, v := range s.Bypasses {
		n += v
	}
	return n
}

// BypassReasons returns the reasons in s.Bypasses, sorted.
func (s Stats) BypassReasons() []BypassReason {
	out := make([]BypassReason, 0, len(s.Bypasses))
	for r := range s.Bypasses {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

type counters struct {
	hits, misses, stale, stores, storeErrors atomic.Uint64
	bypass                                   sync.Map // BypassReason -> *atomic.Uint64
}

// Stats returns a snapshot of the cache's counters.
func (c *Cache) Stats() Stats {
	s := Stats{
		Hits:        c.stats.hits.Load(),
		Misses:      c.stats.misses.Load(),
		StaleHits:   c.stats.stale.Load(),
		Stores:      c.stats.stores.Load(),
		StoreErrors: c.stats.storeErrors.Load(),
		Bypasses:    map[BypassReason]uint64{},
	}
	c.stats.bypass.Range(func(k, v any) bool {
		s.Bypasses[k.(BypassReason)] = v.(*atomic.Uint64).Load()
		return true
	})
	return s
}

func (c *Cache) countBypass(reason BypassReason) {
	v, ok := c.stats.bypass.Load(reason)
	if !ok {
		v, _ = c.stats.bypass.LoadOrStore(reason, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}
