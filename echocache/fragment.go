package echocache

import (
	"context"
)

// DeleteFragment removes the fragments stored under keys. Deleting an
// absent key is not an error. Unlike the template tag's lookups it returns the
// store's error (after logging and counting it), since code that invalidates a
// fragment wants to know when it could not.
func (c *Cache) DeleteFragment(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	return c.core().Delete(ctx, keys...)
}
