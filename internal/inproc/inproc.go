// Package inproc is the protocol between the stores that live in the
// process (stores.Memory, stores.Null) and the cache that uses them.
//
// A Cache calls an in-process store without a timeout and without its
// circuit breaker (such a store answers or fails at once), skips the
// checksums of records it reads back (the bytes never left the process),
// and, when the store can hand out its own bytes ([Store.View]), reads
// pages without copying them and decodes each value once ([Memo]).
//
// A store declares itself with [Register], from an init function; the
// cache finds it with [Lookup] when it is given the store. A networked
// store that keeps copies in the process (stores.LocalTier) declares how
// to read them with [RegisterNear] (near.go): the cache answers from them
// like from an in-process store, and asks the store otherwise. A store this
// package does not know (a third-party store, or ours wrapped by another
// type) is treated as a networked one: correct, only a little slower.
package inproc

import (
	"context"
	"sync"
	"sync/atomic"
)

// ViewFunc is Store.View's type.
type ViewFunc = func(ctx context.Context, key string) ([]byte, *Memo, error)

// Store describes an in-process store.
type Store struct {
	// View returns the value under key without copying it, and its memo,
	// or stores.ErrNotFound. The slice is shared with the store and with
	// every other caller: it must never be modified. View must not retain
	// key after it returns (callers may pass a string that views a reused
	// buffer). Nil when the store cannot hand out its bytes.
	View ViewFunc
}

// inProcess recognises in-process stores.
var inProcess registry[Store]

// Register adds a function that recognises in-process stores.
func Register(find func(store any) (Store, bool)) { inProcess.add(find) }

// Lookup reports whether store lives in the process, and how to view it.
func Lookup(store any) (Store, bool) { return inProcess.find(store) }

// registry holds the functions that recognise one kind of store, added at
// initialisation by the packages that define such stores.
type registry[T any] struct {
	mu      sync.RWMutex
	finders []func(store any) (T, bool)
}

func (r *registry[T]) add(find func(store any) (T, bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finders = append(r.finders, find)
}

// find returns what the first function that recognises store says.
func (r *registry[T]) find(store any) (T, bool) {
	r.mu.RLock()
	fs := r.finders // appended to only, so this view stays valid
	r.mu.RUnlock()
	for _, find := range fs {
		if v, ok := find(store); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// Memo is a slot an in-process store keeps beside one stored value, where a
// reader can keep what it derived from the value's bytes (a decoded page),
// so that later reads of the same value skip the work. A memo belongs to
// one value: the write that replaces the value brings a new, empty memo,
// so a memo never describes bytes other than the ones it came with.
//
// Every reader of the key shares the memo, so what is kept must depend on
// the value's bytes alone, must not be modified once stored, and should be
// checked with a type assertion on Load. Its size is not counted against
// the store's bounds: keep it small. A Memo is safe for concurrent use.
type Memo struct {
	v atomic.Pointer[any]
}

// Load returns what was last stored in m, or nil. A nil *Memo (a value
// without one) holds nothing.
func (m *Memo) Load() any {
	if m == nil {
		return nil
	}
	if p := m.v.Load(); p != nil {
		return *p
	}
	return nil
}

// Store keeps v in m, replacing what was there. On a nil *Memo it does
// nothing.
func (m *Memo) Store(v any) {
	if m == nil {
		return
	}
	m.v.Store(&v)
}
