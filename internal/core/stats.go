package core

import "sync/atomic"

// BypassTooLarge is the bypass reason of a value the store refused as too
// large (echocache.BypassTooLarge).
const BypassTooLarge = "too-large"

// Counters are a cache's statistics (echocache.Stats is their snapshot).
type Counters struct {
	Hits, Misses, Stale, Stores, StoreErrors atomic.Uint64
}

// Counters returns c's counters, for the callers to add to.
func (c *Cache) Counters() *Counters { return &c.stats }

// CountBypass counts one bypass of reason.
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
