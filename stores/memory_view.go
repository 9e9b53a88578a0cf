package stores

import "context"

// View returns the value under key without copying it, and its memo, or
// ErrNotFound (see [Viewer]). The slice is the one the store holds: Set,
// Add and Incr never modify a stored value in place, they replace it, so
// the slice stays valid and unchanged; callers must not modify it. Values
// written by Set, Add and SetMany come with a memo; a value made by Incr
// has none.
func (m *Memory) View(ctx context.Context, key string) ([]byte, *Memo, error) {
	if err := m.check(ctx); err != nil {
		return nil, nil, err
	}
	e, ok := m.read(key)
	if !ok {
		return nil, nil, ErrNotFound
	}
	return e.val, e.memo, nil
}

var _ Viewer = (*Memory)(nil)
