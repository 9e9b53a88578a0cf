package core

import "github.com/echocache/echocache/internal/inproc"

// Stamp is the state of one key of a networked store's in-process tier,
// taken before a read of the key (Watch): while Unchanged says so, what
// that read returned still holds, and a caller may use it again without
// reading again (memoize keeps its version token so).
type Stamp struct {
	ref *storeRef
	s   inproc.Stamp
}

// Watch returns a stamp of key, or false when the store cannot tell when
// key changes (no in-process tier, or one that is not told of every
// change), or when the cache holds keys whose failed writes are unsettled.
func (c *Cache) Watch(key string) (Stamp, bool) {
	r := c.store.Load()
	if r == nil || r.watch.Watch == nil || c.unsettled.n.Load() != 0 {
		return Stamp{}, false
	}
	s, ok := r.watch.Watch(key)
	return Stamp{ref: r, s: s}, ok
}

// Unchanged reports whether the key of st has certainly not changed since
// st was taken (see Stamp), the cache's store being the same.
func (c *Cache) Unchanged(st Stamp) bool {
	return st.ref != nil && c.store.Load() == st.ref && c.unsettled.n.Load() == 0 && st.ref.watch.Unchanged(st.s)
}
