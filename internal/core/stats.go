package core

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
)

// BypassTooLarge is the bypass reason of a value the store refused as too
// large (echocache.BypassTooLarge).
const BypassTooLarge = DetailTooLarge

// Counters are a cache's statistics (echocache.Stats is their snapshot).
// Lookups are counted by feature and result with CountLookup, so that the
// results of a feature add up to its lookups; the other counters are
// added to directly.
type Counters struct {
	lookups [numFeatures][numResults]atomic.Uint64
	// Coalesced counts lookups that missed and then waited for another
	// caller's computation (handler, loader, render) instead of running
	// their own, by feature.
	coalesced [numFeatures]atomic.Uint64

	Stores, StoreErrors atomic.Uint64
	// Corrupt counts stored entries that did not open and were dropped
	// (DetailCorrupt), every feature.
	Corrupt atomic.Uint64
}

// Counters returns c's counters, for the callers to add to.
func (c *Cache) Counters() *Counters { return &c.stats }

// Lookups returns the number of lookups of f that came to r.
func (n *Counters) Lookups(f Feature, r Result) uint64 { return n.lookups[f][r].Load() }

// Coalesced returns the number of lookups of f that waited for another
// caller's computation.
func (n *Counters) Coalesced(f Feature) uint64 { return n.coalesced[f].Load() }

// CountLookup counts one lookup of feature f that came to r, and reports it
// to the observers. detail says why for ResultBypass and ResultError; a
// bypass is also counted under its reason (Bypasses). It is safe on a nil
// *Cache, which counts nothing.
func (c *Cache) CountLookup(ctx context.Context, f Feature, r Result, detail string) {
	if c == nil {
		return
	}
	c.stats.lookups[f][r].Add(1)
	if r == ResultBypass && detail != "" {
		c.CountBypass(detail)
	}
	if p := c.obs.Load(); p != nil {
		p.Lookup(ctx, LookupEvent{Feature: f, Result: r, Detail: BypassReason(detail)})
	}
}

// CountFailedLookup counts a lookup of f that failed with err as
// LookupFailure classifies it.
func (c *Cache) CountFailedLookup(ctx context.Context, f Feature, err error) {
	r, detail := LookupFailure(ctx, err)
	c.CountLookup(ctx, f, r, detail)
}

// LookupFailure returns what a lookup that failed with err came to: a
// store error, or ErrStoreUnavailable from the breaker, is ResultError with
// the detail that names which (DetailContext when ctx ended first);
// ErrNoStore is a bypass (DetailNoStore). The statistics and Cache-Status
// both say it so.
func LookupFailure(ctx context.Context, err error) (Result, string) {
	switch {
	case errors.Is(err, ErrNoStore):
		return ResultBypass, DetailNoStore
	case ctx.Err() != nil:
		return ResultError, DetailContext // the caller gave up
	case errors.Is(err, ErrStoreUnavailable):
		return ResultError, DetailStoreUnavailable
	}
	return ResultError, DetailStoreError
}

// DropCorrupt drops the entry under key, which did not open (err says
// why): it logs it (rate-limited, Logf), counts it (Counters.Corrupt) and
// deletes it, even after ctx ends, so that the next lookup misses and
// stores a good one. key may view a caller's buffer; it is copied.
func (c *Cache) DropCorrupt(ctx context.Context, what, key string, err error) {
	key = strings.Clone(key)
	c.stats.Corrupt.Add(1)
	c.Logf("dropping corrupt %s %q: %v", what, key, err)
	_ = c.Delete(context.WithoutCancel(ctx), key)
}

// CountCoalesced counts a lookup of f that waited for another caller's
// computation.
func (c *Cache) CountCoalesced(f Feature) {
	if c != nil {
		c.stats.coalesced[f].Add(1)
	}
}

// CountBypass counts one bypass of reason: a lookup that was not made, or
// a result that was not stored.
func (c *Cache) CountBypass(reason string) {
	v, ok := c.bypass.Load(reason)
	if !ok {
		v, _ = c.bypass.LoadOrStore(reason, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// Bypasses returns a snapshot of the bypass counts, by reason.
func (c *Cache) Bypasses() map[string]uint64 {
	out := map[string]uint64{}
	c.bypass.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}
