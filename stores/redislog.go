package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// go-redis logs through one logger per process (redis.SetLogger), which
// by default prints every line to stderr: among others one line per failed
// dial, so several lines per request while a redis server is down, on top
// of what the store reports to its caller (which echocache counts and
// logs, rate-limited). An app that uses a redis store should not have to
// know redis.SetLogger to keep its log readable, so this package installs,
// when it is initialised, a logger that writes what go-redis's default
// writes, where it writes it, but at most one line per message (per format
// string) every RedisLogInterval, the next line telling how many were
// dropped.
//
// Why at initialisation, and why this way: go-redis's logger is
// process-wide and has no getter, so a store opened later could not tell
// whether the app has set one, and would replace it. The package is
// initialised before the app's own package, so an app that calls
// redis.SetLogger (in an init function or in main) always gets the last
// word. Apps that use go-redis for other things keep every kind of line,
// only no longer one per request.

// RedisLogInterval is the shortest time between two lines of one go-redis
// message, once this package has installed its go-redis logger.
const RedisLogInterval = 10 * time.Second

var _ = installRedisLogger()

func installRedisLogger() bool {
	redis.SetLogger(newRedisLogger(os.Stderr, RedisLogInterval))
	return true
}

// quietRedisLine reports whether a go-redis line goes to slog.Default()
// at debug level rather than to stderr: the sentinel client's note of the
// sentinel it selected (informational, on every start), and its lines
// about a master name the sentinels do not know (redis.Nil), one per
// sentinel and one per failed dial, which the store's caller gets as the store's error
// (OpenAndPing: "the sentinels answered but know no master named ...").
func quietRedisLine(format string, v []any) bool {
	switch {
	case strings.HasPrefix(format, "sentinel: selected addr="):
		return true
	case strings.HasPrefix(format, "sentinel: GetMasterAddrByName "),
		strings.HasPrefix(format, "redis: connection pool: failed to dial"):
		for _, a := range v {
			if err, ok := a.(error); ok && errors.Is(err, redis.Nil) {
				return true
			}
		}
	}
	return false
}

// redisLogger is go-redis's default logger, rate-limited per format.
type redisLogger struct {
	log      *log.Logger
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	state map[string]*redisLogState
}

type redisLogState struct {
	last       time.Time
	suppressed int
}

func newRedisLogger(w io.Writer, interval time.Duration) *redisLogger {
	return &redisLogger{
		// What go-redis's default logger is (internal.NewDefaultLogger).
		log:      log.New(w, "redis: ", log.LstdFlags|log.Lshortfile),
		interval: interval,
		now:      time.Now,
		state:    map[string]*redisLogState{},
	}
}

// redisLoggerCalldepth attributes a line to the go-redis code that logged
// it: Printf is called by go-redis's forwarding logger, which its code
// calls, as go-redis's default logger is.
const redisLoggerCalldepth = 3

// Printf implements go-redis's logging interface.
func (l *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if quietRedisLine(format, v) {
		if lg := slog.Default(); lg.Enabled(ctx, slog.LevelDebug) {
			lg.DebugContext(ctx, "stores: go-redis: "+fmt.Sprintf(format, v...))
		}
		return
	}
	now := l.now()
	l.mu.Lock()
	st := l.state[format]
	if st == nil {
		if len(l.state) >= 1024 { // formats are constants; bound it anyway
			clear(l.state)
		}
		st = &redisLogState{}
		l.state[format] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < l.interval {
		st.suppressed++
		l.mu.Unlock()
		return
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	l.mu.Unlock()

	msg := fmt.Sprintf(format, v...)
	if n > 0 {
		msg += fmt.Sprintf(" (%d similar lines suppressed)", n)
	}
	_ = l.log.Output(redisLoggerCalldepth, msg)
}
