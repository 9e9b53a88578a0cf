package pagecache

import (
	"context"
	"slices"
	"time"

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
// ordered with the page writes of this process (Invalidate), and returns
// the store's error. When the delete succeeded on a networked store, it
// deletes the keys once more in the background, redeleteDelay later: a
// page another process was writing meanwhile lands within that delay, so
// the second delete removes it. Flush waits for the second deletes.
func DeletePages(ctx context.Context, c *core.Cache, keys ...string) error {
	if err := Invalidate(ctx, c, func() error { return c.Delete(ctx, keys...) }); err != nil {
		return err
	}
	if !inProcess(c) {
		redelete(c, keys)
	}
	return nil
}

// redeleteDelay is how long after a DeletePage its second delete runs:
// long enough that a page write another process had under way when the
// first delete ran has landed, or been undone, by then.
//
// Another process writes a missed page after its response (write.go), on a
// goroutine started when the response is sent, with a context of its own
// whose every store call is bounded by StoreTimeout (writeTimeout is only
// a backstop). A write under way when the first delete ran has begun its
// SetMany by then or begins it at once, so its page reaches the store
// within one StoreTimeout; or its SetMany fails (the store may still have
// applied it, late) and the write removes its keys itself, with a second
// call bounded by StoreTimeout. Two StoreTimeouts cover both, with the
// processes configured alike (a process with a longer StoreTimeout is not
// covered). A write that waits in its process for an earlier write of the
// same page to end (write.go) may begin later than that; and pages whose
// handlers run in other processes when the delete is made are stored
// later still: InvalidateTag is exact for those.
func redeleteDelay(c *core.Cache) time.Duration { return 2 * c.StoreTimeout() }

// redelete deletes keys again, redeleteDelay from now, in the background.
// Flush waits for it; a failure is logged.
func redelete(c *core.Cache, keys []string) {
	w := &stateOf(c).writes
	t := w.beginBackground()
	go func() {
		defer w.end(t, nil, false)
		time.Sleep(redeleteDelay(c))
		// A context of its own: the caller's has likely ended. The store
		// call is bounded by StoreTimeout (core.Cache.Delete).
		if err := c.Delete(context.Background(), keys...); err != nil {
			c.Logf("the second delete of a page (DeletePage) failed; a page another process wrote meanwhile may be served until it expires: %v", err)
		}
	}()
}
