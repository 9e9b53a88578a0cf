package core

import (
	"bytes"
	"fmt"
	"log/slog"
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
	c.Logf("first %d", 1)
	c.Logf("first %d", 2)
	c.Logf("first %d", 3)
	c.limiter("first %d").last.Store(time.Now().Add(-2 * time.Hour).UnixNano())
	c.Logf("first %d", 4)
	if len(logs.lines) != 2 {
		t.Fatalf("Logf wrote %q; want 2 lines", logs.lines)
	}
	if got := logs.lines[1]; !strings.HasSuffix(got, "first 4 (2 similar messages suppressed)") {
		t.Errorf("second line = %q; want the suppressed count", got)
	}
}

// A burst of one message does not hide another: the circuit breaker
// opening right after a store error, and closing later, both show.
func TestLogfLimitsEachMessageOnItsOwn(t *testing.T) {
	logs := &logRecorder{}
	var c Cache
	c.Configure(Config{Logger: logs, LogInterval: time.Hour})
	for range 10 {
		c.Logf("store error (serving uncached): %v", "boom")
	}
	c.Logf("store failed %d times in a row", 5)
	c.Logf("store answers again; circuit breaker closed")
	want := []string{
		"echocache: store error (serving uncached): boom",
		"echocache: store failed 5 times in a row",
		"echocache: store answers again; circuit breaker closed",
	}
	if fmt.Sprint(logs.lines) != fmt.Sprint(want) {
		t.Errorf("lines = %q; want %q", logs.lines, want)
	}
}

// Without a configured logger, lines go to slog.Default() at WARN, which
// prints them with the standard library's defaults (INFO and above).
func TestLogfDefaultsToSlogDefault(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(prev)

	var c Cache
	c.Logf("store error (serving uncached): %v", "refused")
	if got := buf.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "echocache: store error (serving uncached): refused") {
		t.Errorf("slog.Default() got %q; want the line at WARN", got)
	}
}

// Config.Slog takes precedence over Config.Logger.
func TestLogfSlogFirst(t *testing.T) {
	var buf bytes.Buffer
	logs := &logRecorder{}
	var c Cache
	c.Configure(Config{Slog: slog.New(slog.NewTextHandler(&buf, nil)), Logger: logs})
	c.Logf("fragment %q does not open", "k")
	if !strings.Contains(buf.String(), `echocache: fragment \"k\" does not open`) || len(logs.lines) != 0 {
		t.Errorf("slog got %q, Logger got %q; want the line in slog only", buf.String(), logs.lines)
	}
}

func TestWarnNoCacheOnce(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(prev)
	ResetWarnNoCache()
	defer ResetWarnNoCache()

	for range 3 {
		WarnNoCache("e.Use(echocache.WithCache(cache))")
	}
	if n := strings.Count(buf.String(), "WithCache"); n != 1 {
		t.Errorf("WarnNoCache three times logged %d lines naming WithCache; want 1:\n%s", n, buf.String())
	}
}
