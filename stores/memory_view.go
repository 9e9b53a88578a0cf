package stores

import (
	"context"

	"github.com/echocache/echocache/internal/inproc"
)

// Memory and Null live in the process: a Cache calls them without a
// timeout or a breaker, and views Memory's values without copying them
// (see internal/inproc).
func init() {
	inproc.Register(func(s any) (inproc.Store, bool) {
		switch s := s.(type) {
		case *Memory:
			return inproc.Store{View: s.view}, true
		case *Null:
			return inproc.Store{}, true
		}
		return inproc.Store{}, false
	})
}

// view returns the value under key without copying it, and its memo, or
// ErrNotFound (see inproc.Store.View). The slice is the one the store
// holds: Set, Add and Incr never modify a stored value in place, they
// replace it, so the slice stays valid and unchanged; callers must not
// modify it. Values written by Set, Add and SetMany come with a memo; a
// value made by Incr has none.
func (m *Memory) view(ctx context.Context, key string) ([]byte, *inproc.Memo, error) {
	if err := m.check(ctx); err != nil {
		return nil, nil, err
	}
	e, ok := m.read(key)
	if !ok {
		return nil, nil, ErrNotFound
	}
	return e.val, e.memo, nil
}
