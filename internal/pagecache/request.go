package pagecache

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/echocache/echocache/internal/core"
)

// The per-request state of a miss that handlers reach through the
// request's context: the TTL and tags of the response being built
// (echocache.SetTTL and Tag, and their echov5 and httpcache forms).

// request is what SetTTL and Tag record for one miss. Nested routes chain
// theirs through parent, so a handler's call reaches every route it runs
// under.
type request struct {
	cache  *core.Cache
	ctx    context.Context
	parent *request

	ttl    time.Duration
	ttlSet bool
	tags   []tagVersion
	tagErr bool
	// failed: an error was handed to the framework's error handler while
	// the handler ran (Fail), so its response is an error's, or one cut
	// short by a panic a middleware inside the route recovered.
	failed atomic.Bool
}

// requestKey is the context key of a miss's request.
type requestKey struct{}

func withRequest(ctx context.Context, rr *request) context.Context {
	return context.WithValue(ctx, requestKey{}, rr)
}

func requestOf(ctx context.Context) *request {
	rr, _ := ctx.Value(requestKey{}).(*request)
	return rr
}

// SetTTL sets the TTL of the response being built by the handler whose
// request has ctx (or a context derived from it); see echocache.SetTTL.
// Outside a cached miss it does nothing.
func SetTTL(ctx context.Context, ttl time.Duration) {
	for rr := requestOf(ctx); rr != nil; rr = rr.parent {
		rr.ttl, rr.ttlSet = ttl, true
	}
}

// Tag attaches tags to the response being built by the handler whose
// request has ctx; see echocache.Tag. Outside a cached miss it does
// nothing.
func Tag(ctx context.Context, tags ...string) {
	for rr := requestOf(ctx); rr != nil; rr = rr.parent {
		tv, err := tagVersions(rr.ctx, rr.cache, tags)
		if err != nil {
			rr.tagErr = true
			continue
		}
		rr.tags = append(rr.tags, tv...)
	}
}

// Fail marks the response being built by the handler whose request has
// ctx as failed: it is not stored by any route it runs under (BypassError).
// A front end calls it when its framework's error handler is given an
// error during the handler (Echo v4's middleware.Recover hands a panic
// there and returns nil). Outside a cached miss it does nothing.
func Fail(ctx context.Context) {
	for rr := requestOf(ctx); rr != nil; rr = rr.parent {
		rr.failed.Store(true)
	}
}
