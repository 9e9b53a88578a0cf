package echocache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/echocache/echocache/internal/pagecache"
)

// DeletePage removes a cached page, Flask-Caching's delete_cached. target is
// the URL or path as it was requested, with its query: "/zen?lang=en" or
// "https://example.com/zen?lang=en".
//
// Every variant of the page goes at once: all hosts and schemes (a host in
// target is ignored) and all values of the vary headers. This works because
// a page's variants are keyed under a random per-page nonce kept with the
// page record; deleting the record makes the next response pick a new nonce,
// so the old variants are never read again and expire on their own (see
// internal/pagecache/keys.go).
//
// The query is canonicalised the way each route middleware built on c does
// it (ignored parameters, DropQuery, KeyPrefix), so target may carry
// parameters the routes ignore. Pages of routes with a KeyFunc are deleted
// with DeletePageKey. A process that built no route middleware (a script)
// derives the key with the default route config.
//
// A response whose handler began before DeletePage is not stored by this
// process after it, and the page writes under way end before the delete.
// Another process writes a missed page after its response, so its write
// can land after the delete: on a networked store DeletePage therefore
// deletes the page a second time, in the background, 2×StoreTimeout after
// the first delete returned, by when a page write under way in another
// process when DeletePage ran has landed (each store call of a page write
// is bounded by StoreTimeout; the processes share one config). Such a page
// does not survive DeletePage once the second delete has run; Flush waits
// for it, so a script that calls DeletePage and then Flush before it exits
// makes both deletes. A page whose handler is still running in another
// process when DeletePage is called may be stored after both: call
// DeletePage after the change it reflects is visible to handlers, and use
// tags (Tag, InvalidateTag), which are versioned, where the invalidation
// must also cover the pages being computed elsewhere at that moment. A
// failed second delete is logged through the Cache's logger.
//
// Unlike route lookups, DeletePage returns the store's error (of the first
// delete, which it waits for; the second is made only when the first
// succeeded), since the caller wants to know that the page is still
// cached.
func (c *Cache) DeletePage(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("echocache: DeletePage: malformed target %q: %v", target, err)
	}
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("echocache: DeletePage: target %q: want a path starting with / or an absolute URL", target)
	}
	return pagecache.DeletePages(ctx, c.core(), pagecache.PageKeys(c.core(), p, u.RawQuery)...)
}

// DeletePageKey removes the cached page of a route with a KeyFunc, given
// the key the KeyFunc returned. Like DeletePage it drops every variant,
// returns the store's error, and on a networked store deletes the page a
// second time 2×StoreTimeout later, for a write under way in another
// process (see DeletePage for what that promises and what it does not).
func (c *Cache) DeletePageKey(ctx context.Context, key string) error {
	if key == "" {
		return errors.New("echocache: DeletePageKey: empty key")
	}
	return pagecache.DeletePages(ctx, c.core(), pagecache.CustomPageKey(key))
}

// InvalidateTag drops every cached page tagged with tag (see Tag), on every
// backend, with one store write: it gives the tag a new random version, and
// a page stored with another version of one of its tags is a miss. No key
// is scanned. It returns the store's error.
func (c *Cache) InvalidateTag(ctx context.Context, tag string) error {
	return pagecache.InvalidateTag(ctx, c.core(), tag)
}
