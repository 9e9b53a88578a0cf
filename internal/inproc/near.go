package inproc

import "sync"

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

var (
	nearMu      sync.RWMutex
	nearFinders []func(store any) NearFunc
)

// RegisterNear adds a function that recognises networked stores keeping
// copies in the process, and returns how to read them (nil for a store it
// does not recognise).
func RegisterNear(find func(store any) NearFunc) {
	nearMu.Lock()
	defer nearMu.Unlock()
	nearFinders = append(nearFinders, find)
}

// LookupNear returns how to read the in-process copies of store, or nil
// when it keeps none.
func LookupNear(store any) NearFunc {
	nearMu.RLock()
	fs := nearFinders // appended to only, so this view stays valid
	nearMu.RUnlock()
	for _, find := range fs {
		if f := find(store); f != nil {
			return f
		}
	}
	return nil
}
