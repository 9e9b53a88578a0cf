package stores_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/stores"
)

// restartLoad is a steady load of Set and Get of one key on a store whose
// server is killed and restarted: each call's time and error, for the
// check that the store is used again soon after the restart.
type restartLoad struct {
	results chan callResult
	stop    context.CancelFunc
	failed  atomic.Bool // some call failed
}

type callResult struct {
	start time.Time // when the call was made
	at    time.Time // when it returned
	err   error
}

// startRestartLoad starts workers goroutines that each call s every tick,
// alternating Set and Get of key (a miss counts as a success), each call
// bounded by timeout (none when 0). The load ends after the check, or 5 s
// after it starts, whatever happens (see usedAgain); it stops with the
// test.
func startRestartLoad(t *testing.T, s stores.Store, key string, workers int, tick, timeout time.Duration) *restartLoad {
	ctx := t.Context()
	lctx, stop := context.WithCancel(ctx)
	l := &restartLoad{results: make(chan callResult, 1000), stop: stop}
	t.Cleanup(stop)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			tk := time.NewTicker(tick)
			defer tk.Stop()
			for i := 0; ; i++ {
				select {
				case <-lctx.Done():
					return
				case <-tk.C:
				}
				start := time.Now()
				cctx, cancel := ctx, context.CancelFunc(func() {})
				if timeout > 0 {
					cctx, cancel = context.WithTimeout(ctx, timeout)
				}
				var err error
				if (g+i)%2 == 0 {
					err = s.Set(cctx, key, []byte("v"), 0)
				} else if _, err = s.Get(cctx, key); errors.Is(err, stores.ErrNotFound) {
					err = nil
				}
				cancel()
				if err != nil {
					l.failed.Store(true)
				}
				l.results <- callResult{start, time.Now(), err}
			}
		})
	}
	go func() { wg.Wait(); close(l.results) }()
	return l
}

// usedAgain checks that a call made within a second of back (the restart)
// succeeds and that none of the 20 calls after it fails; then it ends the
// load. A call is timed by when it was made, so that its own latency on a
// loaded machine does not count: the store was used again when it was
// made.
func (l *restartLoad) usedAgain(t *testing.T, back time.Time) {
	t.Helper()
	time.AfterFunc(5*time.Second, l.stop)
	var first time.Time
	after := 0
	for r := range l.results {
		if r.start.Before(back) {
			continue
		}
		if first.IsZero() {
			if r.err == nil {
				first = r.start
			}
			continue
		}
		require.NoError(t, r.err, "a call failed after the first success since the restart")
		if after++; after == 20 {
			l.stop()
		}
	}
	require.False(t, first.IsZero(), "no call succeeded after the restart")
	t.Logf("first successful call made %v after the restart", first.Sub(back).Round(time.Millisecond))
	assert.LessOrEqual(t, first.Sub(back), time.Second, "first successful call after the restart")
}
