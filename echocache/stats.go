package echocache

import (
	"slices"
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

// Stats returns a snapshot of the cache's counters.
func (c *Cache) Stats() Stats {
	n := c.core().Counters()
	s := Stats{
		Hits:        n.Hits.Load(),
		Misses:      n.Misses.Load(),
		StaleHits:   n.Stale.Load(),
		Stores:      n.Stores.Load(),
		StoreErrors: n.StoreErrors.Load(),
		Bypasses:    map[BypassReason]uint64{},
	}
	for r, v := range c.core().Bypasses() {
		s.Bypasses[BypassReason(r)] = v
	}
	return s
}

func (c *Cache) countBypass(reason BypassReason) { c.core().CountBypass(string(reason)) }
