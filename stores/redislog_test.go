package stores

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
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
