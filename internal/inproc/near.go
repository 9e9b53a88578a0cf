package inproc

import "sync/atomic"

// NearFunc returns the copy of key that a networked store keeps in the
// process (stores.LocalTier), without copying it, and its memo, when the
// store can answer from it now; ok is false otherwise, and the caller asks
// the store. The slice is shared with the store and every other caller: it
// must never be modified. A NearFunc must not retain key after it returns.
//
// A read it answers needs no store timeout and no circuit breaker: it
// makes no round trip. Everything else about the store (its writes, its
// misses) is networked.
type NearFunc = func(key string) (v []byte, memo *Memo, ok bool)

// Near describes a networked store that keeps copies in the process.
type Near struct {
	// View reads a copy (see NearFunc).
	View NearFunc
	// Watch returns a stamp of key's state, taken before a read of key,
	// when the store is told of every change of its keys (redis's
	// announcements); ok is false otherwise. Nil when it never is.
	Watch func(key string) (s Stamp, ok bool)
	// Unchanged reports whether the key of s has certainly not changed
	// since s was taken, so that what a read of it returned after s was
	// taken still holds: false once the key may have changed, here or in
	// another process, or the store stopped being told of changes.
	Unchanged func(s Stamp) bool
}

// Stamp is the state of one key in a store's in-process tier (see
// Near.Watch): the counter its changes move, its count, and the count of
// the tier's flushes. Only the store that made it reads it.
type Stamp struct {
	Counter *atomic.Uint64
	Count   uint64
	Epoch   uint64
}

// nears recognises networked stores keeping copies in the process.
var nears registry[Near]

// RegisterNear adds a function that recognises networked stores keeping
// copies in the process, and returns how to read them.
func RegisterNear(find func(store any) (Near, bool)) { nears.add(find) }

// LookupNear returns how to read the in-process copies of store; ok is
// false when it keeps none.
func LookupNear(store any) (Near, bool) { return nears.find(store) }
