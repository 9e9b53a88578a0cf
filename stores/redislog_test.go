package stores

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/internal/syncbuf"
)

// One go-redis message repeated per request gives one line per interval,
// then one that counts what was dropped; another message is not held back
// by it.
func TestRedisLoggerRateLimitsEachMessage(t *testing.T) {
	var buf bytes.Buffer
	l := newRedisLogger(&buf, time.Minute)
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }
	ctx := context.Background()
	const dial = "redis: connection pool: failed to dial after %d attempts: %v"
	for range 100 {
		l.Printf(ctx, dial, 5, "connection refused")
	}
	l.Printf(ctx, "sentinel: new master=%q addr=%q", "m", "127.0.0.1:1")
	now = now.Add(time.Minute)
	l.Printf(ctx, dial, 5, "connection refused")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("logged %d lines; want 3:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{
		"redis: connection pool: failed to dial after 5 attempts: connection refused",
		`sentinel: new master="m" addr="127.0.0.1:1"`,
		"failed to dial after 5 attempts: connection refused (99 similar lines suppressed)",
	} {
		if !strings.HasPrefix(lines[i], "redis: ") || !strings.HasSuffix(lines[i], want) {
			t.Errorf("line %d = %q; want go-redis's prefix and %q", i, lines[i], want)
		}
	}
}

// The sentinel client's start-up lines, informational or about a master
// name the sentinels do not know (which the store's error names), do not
// reach stderr; its other lines, and dial failures of another cause, do.
func TestRedisLoggerQuietsStartupLines(t *testing.T) {
	var buf bytes.Buffer
	l := newRedisLogger(&buf, time.Minute)
	ctx := context.Background()
	unknown := fmt.Errorf("redis: all sentinels specified in configuration are unreachable: %w", errors.Join(redis.Nil, redis.Nil))
	l.Printf(ctx, "sentinel: selected addr=%s masterAddr=%s", "127.0.0.1:1", "127.0.0.1:2")
	l.Printf(ctx, "sentinel: GetMasterAddrByName addr=%s, master=%q failed: %s", "127.0.0.1:1", "nosuch", redis.Nil)
	l.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v", 1, unknown)
	if buf.Len() != 0 {
		t.Fatalf("start-up lines reached the log:\n%s", buf.String())
	}
	l.Printf(ctx, "sentinel: GetMasterAddrByName addr=%s, master=%q failed: %s", "127.0.0.1:1", "m", errors.New("connection refused"))
	l.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v", 1, errors.New("connection refused"))
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Errorf("logged %d lines; want the 2 about unreachable servers:\n%s", n, buf.String())
	}
}

// A start with a master name the sentinels do not know prints nothing of
// go-redis's through this package's logger: the error says it all.
func TestRedisSentinelUnknownMasterLogsNothing(t *testing.T) {
	sentinels, _ := servertest.RedisSentinelAddrs(t)
	var buf syncbuf.Buffer
	redis.SetLogger(newRedisLogger(&buf, time.Minute))
	t.Cleanup(func() { installRedisLogger() })
	s, err := OpenAndPing(t.Context(), "redis+sentinel://"+strings.Join(sentinels, ",")+"/nosuch")
	if err == nil {
		s.Close()
		t.Fatal("OpenAndPing of an unknown master name succeeded")
	}
	if !strings.Contains(err.Error(), `know no master named "nosuch"`) {
		t.Errorf("error %q does not name the master", err)
	}
	if got := buf.String(); got != "" {
		t.Errorf("go-redis logged at start-up:\n%s", got)
	}
}
