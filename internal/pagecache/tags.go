package pagecache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/stores"
)

// Tags: each tag has a random version in the store (t:<tag>); a page
// records the versions its tags had when it was stored, and a page whose
// tag has moved on is a miss. InvalidateTag is one write; no key is
// scanned.

// InvalidateTag gives tag a new random version (echocache.InvalidateTag),
// ordered with the page writes (Invalidate).
func InvalidateTag(ctx context.Context, c *core.Cache, tag string) error {
	if tag == "" {
		return errors.New("echocache: InvalidateTag: empty tag")
	}
	var v [8]byte
	binary.LittleEndian.PutUint64(v[:], rand.Uint64())
	return Invalidate(ctx, c, func() error {
		return c.Set(ctx, keyspace.Tag+tag, v[:], stores.NoExpiry)
	})
}

// tagVersions reads the current versions of tags, giving a version to those
// that have none yet. Empty and repeated tags are skipped.
func tagVersions(ctx context.Context, c *core.Cache, tags []string) ([]tagVersion, error) {
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
	got, err := c.GetMany(ctx, keys)
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
				err = c.Set(ctx, keys[i], v[:], stores.NoExpiry)
				added = err == nil
			} else {
				added, err = c.Add(ctx, keys[i], v[:], stores.NoExpiry)
			}
			if err != nil {
				return nil, err
			}
			if raw = v[:]; !added {
				if raw, err = c.Get(ctx, keys[i]); err != nil {
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
func tagsCurrent(ctx context.Context, c *core.Cache, e *entry) (bool, error) {
	tags := e.tagVersions()
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = keyspace.Tag + t.name
	}
	got, err := c.GetMany(ctx, keys)
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
