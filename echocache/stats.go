package echocache

import (
	"context"
	"slices"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/stores"
)

// Stats is a snapshot of a Cache's counters since it was created.
//
// Every lookup (a request to a cached route, a Get, a memoized call, a
// template block) is counted once, under its feature and one [Result], so
// the counts add up: Hits + Misses + StaleHits is the number of lookups
// made, and a hit ratio is Hits / (Hits + Misses + StaleHits). A lookup
// the store could not answer is a miss (the request or call ran as on a
// miss) and is counted in LookupErrors as well.
type Stats struct {
	// Hits counts lookups answered by a fresh entry, every feature.
	Hits uint64
	// Misses counts lookups that found nothing usable, LookupErrors
	// included.
	Misses uint64
	// StaleHits counts stale entries served (stale-while-revalidate and
	// stale-if-error).
	StaleHits uint64
	// LookupErrors counts lookups the store could not answer: it failed,
	// timed out, or the circuit breaker skipped it. Each is in Misses too.
	LookupErrors uint64
	// Stores counts entries written.
	Stores uint64
	// Bypasses counts requests or calls that did not consult the cache
	// (the route's Skipper, a POST, Authorization...) and results that
	// were not stored (a cookie, a 500, a zero result...), by reason
	// (BypassMethod, BypassSetCookie, BypassAuthorization...).
	Bypasses map[BypassReason]uint64
	// StoreErrors counts store calls that failed or were skipped by the
	// circuit breaker: reads, writes and deletes alike.
	StoreErrors uint64
	// Coalesced counts lookups that missed and then waited for another
	// caller's handler, loader or render instead of running their own
	// (stampede protection at work).
	Coalesced uint64
	// CorruptEntries counts stored entries that did not open (damaged,
	// forged, or written in another format): pages, values, compressed
	// entries and fragments. Each is logged (rate-limited), deleted where
	// the store allows it, and its lookup is a miss; a page's miss says
	// detail=corrupt in Cache-Status and in its LookupEvent.
	CorruptEntries uint64

	// Pages, Values, Memoize and Fragments are the counts of each
	// feature: cached routes; Get, GetMany, GetOrSet and Function;
	// Memoize; pongotag's cache tag. The totals above are their sums.
	Pages, Values, Memoize, Fragments FeatureStats

	// BreakerOpen reports whether the circuit breaker skips the store
	// now.
	BreakerOpen bool
	// Store is the store's own account of what it holds (entries, bytes,
	// evictions) when it keeps one ([stores.StatsReporter]: memory://);
	// nil otherwise.
	Store *stores.StoreStats
}

// FeatureStats are the lookup counts of one [Feature].
type FeatureStats struct {
	// Hits counts lookups answered by a fresh entry.
	Hits uint64
	// Misses counts lookups that found nothing usable, Errors included.
	Misses uint64
	// StaleHits counts stale entries served.
	StaleHits uint64
	// Errors counts lookups the store could not answer (also in Misses).
	Errors uint64
	// Bypasses counts requests or calls that did not consult the cache
	// (ResultBypass); results not stored after a miss are not in it.
	Bypasses uint64
	// Coalesced counts misses that waited for another caller's
	// computation.
	Coalesced uint64
}

// Lookups returns the number of lookups made: Hits + Misses + StaleHits.
func (f FeatureStats) Lookups() uint64 { return f.Hits + f.Misses + f.StaleHits }

// Feature returns the counts of f.
func (s Stats) Feature(f Feature) FeatureStats {
	switch f {
	case FeaturePage:
		return s.Pages
	case FeatureValue:
		return s.Values
	case FeatureMemoize:
		return s.Memoize
	case FeatureFragment:
		return s.Fragments
	}
	return FeatureStats{}
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

// Stats returns a snapshot of the cache's counters. The counters are read
// one by one while the cache is in use, so a snapshot may catch a lookup
// in one counter and not yet in another.
func (c *Cache) Stats() Stats {
	cc := c.core()
	n := cc.Counters()
	s := Stats{
		Stores:         n.Stores.Load(),
		StoreErrors:    n.StoreErrors.Load(),
		CorruptEntries: n.Corrupt.Load(),
		Bypasses:       map[BypassReason]uint64{},
		BreakerOpen:    cc.BreakerOpen(),
	}
	for _, f := range core.Features {
		fs := FeatureStats{
			Hits:      n.Lookups(f, core.ResultHit),
			StaleHits: n.Lookups(f, core.ResultStale),
			Errors:    n.Lookups(f, core.ResultError),
			Bypasses:  n.Lookups(f, core.ResultBypass),
			Coalesced: n.Coalesced(f),
		}
		fs.Misses = n.Lookups(f, core.ResultMiss) + fs.Errors
		s.Hits += fs.Hits
		s.Misses += fs.Misses
		s.StaleHits += fs.StaleHits
		s.LookupErrors += fs.Errors
		s.Coalesced += fs.Coalesced
		switch f {
		case FeaturePage:
			s.Pages = fs
		case FeatureValue:
			s.Values = fs
		case FeatureMemoize:
			s.Memoize = fs
		case FeatureFragment:
			s.Fragments = fs
		}
	}
	for r, v := range cc.Bypasses() {
		s.Bypasses[BypassReason(r)] = v
	}
	if r, ok := cc.Store().(stores.StatsReporter); ok {
		st := r.Stats()
		s.Store = &st
	}
	return s
}

// countBypass counts a result that was not stored, by reason.
func (c *Cache) countBypass(reason BypassReason) { c.core().CountBypass(string(reason)) }

// bypass counts a lookup of f that was not made, by reason.
func (c *Cache) bypass(ctx context.Context, f Feature, reason BypassReason) {
	c.core().CountLookup(ctx, f, core.ResultBypass, string(reason))
}

// countLookup counts one lookup of f that came to r.
func (c *Cache) countLookup(ctx context.Context, f Feature, r Result) {
	c.core().CountLookup(ctx, f, r, "")
}

// countFailedLookup counts a lookup of f that failed with err (a miss and
// an error).
func (c *Cache) countFailedLookup(ctx context.Context, f Feature, err error) {
	c.core().CountFailedLookup(ctx, f, err)
}
