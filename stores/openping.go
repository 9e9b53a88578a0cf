package stores

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultPingTimeout bounds the check of [OpenAndPing] when ctx has no
// deadline.
const DefaultPingTimeout = 3 * time.Second

// startupCheckKey is the key OpenAndPing reads (in the store's namespace):
// it need not exist.
const startupCheckKey = "echocache-startup-check"

// OpenAndPing opens the store named by rawURL, as [Open] does, and checks
// that its server answers and accepts the credentials, as [Ping] does, and
// that a read works (a Get of a key that need not exist, so that a server
// requiring credentials the URL lacks is caught), within ctx's deadline or
// DefaultPingTimeout: call it at start-up, so that a wrong URL, a wrong or
// missing password or a server that is down stops the app with a message
// naming the problem rather than turning into a silent stream of uncached
// requests. Stores without a server (null, memory, file) are opened and
// read (a file store's directory must be readable). Its errors never show
// the URL's password: one from Open is Open's; one from the check, after
// the store is closed, is "stores: the store's server refused the
// credentials: stores: authentication failed: ..." for refused credentials
// (errors.Is(err, ErrAuth)), and "stores: store does not answer: ..."
// otherwise.
//
// A store spread over several servers starts when some of them answer, as
// a Redis Cluster starts with one of its seed addresses down: a memcached
// pool whose check fails for some servers only (errors wrapping
// ErrNodeDown) is returned without an error, and the servers that did not
// answer are logged through slog.Default(). The store skips them and
// probes them until they answer ((*Memcached).Servers tells their state).
// A pool of which no server answers is an error.
func OpenAndPing(ctx context.Context, rawURL string) (Store, error) {
	store, err := Open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	pctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, DefaultPingTimeout)
		defer cancel()
	}
	err = Ping(pctx, store)
	if err == nil {
		// What every request needs, beyond an answer: a read, which a
		// server refuses without the credentials it requires, and which
		// reaches a file store's directory.
		if _, err = store.Get(pctx, startupCheckKey); errors.Is(err, ErrNotFound) {
			err = nil
		}
	}
	switch {
	case err == nil:
		return store, nil
	case errors.Is(err, ErrNodeDown) && !errors.Is(err, ErrAuth):
		slog.Default().Warn("stores: starting without the servers that do not answer; they are used again as soon as they do",
			"store", fmt.Sprintf("%T", store), "err", err)
		return store, nil
	}
	store.Close()
	if errors.Is(err, ErrAuth) {
		// The server answered: it refused the credentials.
		return nil, fmt.Errorf("stores: the store's server refused the credentials: %w", err)
	}
	return nil, fmt.Errorf("stores: store does not answer: %w", err)
}
