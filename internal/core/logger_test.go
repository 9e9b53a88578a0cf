package core

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Warnf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func TestLogfSuppressedCountIsReported(t *testing.T) {
	logs := &logRecorder{}
	var c Cache
	c.Configure(Config{Logger: logs, LogInterval: time.Hour})
	c.Logf("first")
	c.Logf("second")
	c.Logf("third")
	c.lastLog.Store(time.Now().Add(-2 * time.Hour).UnixNano())
	c.Logf("fourth")
	if len(logs.lines) != 2 {
		t.Fatalf("Logf wrote %q; want 2 lines", logs.lines)
	}
	if got := logs.lines[1]; !strings.HasSuffix(got, "fourth (2 similar messages suppressed)") {
		t.Errorf("second line = %q; want the suppressed count", got)
	}
}
