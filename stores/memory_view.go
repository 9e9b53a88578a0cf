package stores

import "context"

// View returns the value under key without copying it, or ErrNotFound (see
// [Viewer]). The slice is the one the store holds: Set, Add and Incr never
// modify a stored value in place, they replace it, so the slice stays
// valid and unchanged; callers must not modify it.
func (m *Memory) View(ctx context.Context, key string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	e, ok := m.cache.GetIfPresent(key)
	if !ok {
		return nil, ErrNotFound
	}
	return e.val, nil
}

var _ Viewer = (*Memory)(nil)
