package echocache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"

	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/stores"
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
// keys.go).
//
// The query is canonicalised the way each route middleware built on c does
// it (ignored parameters, DropQuery, KeyPrefix), so target may carry
// parameters the routes ignore. Pages of routes with a KeyFunc are deleted
// with DeletePageKey. A process that built no route middleware (a script)
// derives the key with the default route config.
//
// A response that was being computed when DeletePage ran may still be
// stored after it, as with any cache invalidation; call DeletePage after
// the change it reflects is visible to handlers.
//
// Unlike route lookups, DeletePage returns the store's error, since the
// caller wants to know that the page is still cached.
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
	var keys []string
	for _, k := range routeStateOf(c).allKeyings() {
		key := string(k.appendPageKey(nil, p, u.RawQuery))
		if !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	return c.core().Delete(ctx, keys...)
}

// DeletePageKey removes the cached page of a route with a KeyFunc, given
// the key the KeyFunc returned. Like DeletePage it drops every variant.
func (c *Cache) DeletePageKey(ctx context.Context, key string) error {
	if key == "" {
		return errors.New("echocache: DeletePageKey: empty key")
	}
	return c.core().Delete(ctx, string(appendCustomPageKey(nil, key)))
}

// InvalidateTag drops every cached page tagged with tag (see Tag), on every
// backend, with one store write: it gives the tag a new random version, and
// a page stored with another version of one of its tags is a miss. No key
// is scanned. It returns the store's error.
func (c *Cache) InvalidateTag(ctx context.Context, tag string) error {
	if tag == "" {
		return errors.New("echocache: InvalidateTag: empty tag")
	}
	var v [8]byte
	binary.LittleEndian.PutUint64(v[:], rand.Uint64())
	return c.core().Set(ctx, keyspace.Tag+tag, v[:], stores.NoExpiry)
}

// tagVersions reads the current versions of tags, giving a version to those
// that have none yet. Empty and repeated tags are skipped.
func (c *Cache) tagVersions(ctx context.Context, tags []string) ([]tagVersion, error) {
	var names, keys []string
	for _, t := range tags {
		if t != "" && !slices.Contains(names, t) {
			names = append(names, t)
			keys = append(keys, keyspace.Tag+t)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	got, err := c.core().GetMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]tagVersion, 0, len(names))
	for i, name := range names {
		raw, ok := got[keys[i]]
		if !ok || len(raw) != 8 {
			// No version yet (or an unreadable one): create one. Add, so
			// that concurrent first users agree on it.
			var v [8]byte
			binary.LittleEndian.PutUint64(v[:], rand.Uint64())
			var added bool
			if ok {
				err = c.core().Set(ctx, keys[i], v[:], stores.NoExpiry)
				added = err == nil
			} else {
				added, err = c.core().Add(ctx, keys[i], v[:], stores.NoExpiry)
			}
			if err != nil {
				return nil, err
			}
			if raw = v[:]; !added {
				if raw, err = c.core().Get(ctx, keys[i]); err != nil {
					return nil, err
				}
				if len(raw) != 8 {
					return nil, fmt.Errorf("echocache: tag %q has a malformed version", name)
				}
			}
		}
		out = append(out, tagVersion{name: name, version: binary.LittleEndian.Uint64(raw)})
	}
	return out, nil
}

// tagsCurrent reports whether every tag of e still has the version e was
// stored with. A tag whose version is gone (evicted) counts as moved.
func (c *Cache) tagsCurrent(ctx context.Context, e *entry) (bool, error) {
	tags := e.tagVersions()
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = keyspace.Tag + t.name
	}
	got, err := c.core().GetMany(ctx, keys)
	if err != nil {
		return false, err
	}
	for i, t := range tags {
		raw := got[keys[i]]
		if len(raw) != 8 || binary.LittleEndian.Uint64(raw) != t.version {
			return false, nil
		}
	}
	return true, nil
}
