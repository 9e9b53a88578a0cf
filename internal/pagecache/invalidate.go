package pagecache

import (
	"context"
	"slices"

	"github.com/echocache/echocache/internal/core"
)

// PageKeys returns the page keys of a request path (escaped) and raw query
// under every keying of c's routes, whatever their front end, or under the
// default keying when c has none (a script). echocache.DeletePage deletes
// them.
func PageKeys(c *core.Cache, escPath, rawQuery string) []string {
	var keys []string
	for _, k := range stateOf(c).allKeyings() {
		key := string(k.appendPageKey(nil, escPath, rawQuery))
		if !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	return keys
}

// CustomPageKey returns the page key of a route with a key function for
// the key it returned (echocache.DeletePageKey).
func CustomPageKey(key string) string {
	return string(appendCustomPageKey(nil, key))
}

// DeletePages deletes page keys (echocache.DeletePage, DeletePageKey),
// ordered with the page writes (Invalidate).
func DeletePages(ctx context.Context, c *core.Cache, keys ...string) error {
	return Invalidate(ctx, c, func() error { return c.Delete(ctx, keys...) })
}
