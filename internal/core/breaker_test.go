package core

import (
	"testing"
	"time"
)

func TestBreakerOpensOnFailures(t *testing.T) {
	var b breaker
	b.configure(2, 100*time.Millisecond)
	const now = int64(1_000_000_000)
	if b.isOpen() {
		t.Fatal("a configured breaker is open")
	}
	if n, _ := b.failure(now, time.Millisecond); n != 0 {
		t.Fatalf("failure 1 of 2 opened the breaker (%d)", n)
	}
	if b.answered(now, time.Millisecond) {
		t.Fatal("a quick answer opened the breaker")
	}
	if n, _ := b.failure(now, time.Millisecond); n != 0 {
		t.Fatal("a quick answer did not end the run of failures")
	}
	if n, _ := b.failure(now, time.Millisecond); n != 2 {
		t.Fatalf("failure 2 of 2 in a row = %d; want 2 (opened)", n)
	}
	if !b.isOpen() {
		t.Fatal("isOpen after opening = false")
	}
	if n, _ := b.failure(now, time.Millisecond); n != 0 {
		t.Fatal("an open breaker opened again")
	}
	if !b.close() {
		t.Fatal("close of an open breaker reported it closed")
	}
	if b.isOpen() || b.close() {
		t.Fatal("close did not close, or closed twice")
	}

	var never breaker
	never.configure(-1, 100*time.Millisecond)
	for i := range 100 {
		never.failure(now+int64(i)*int64(time.Second), time.Second)
		never.answered(now+int64(i)*int64(time.Second), time.Second)
	}
	if never.isOpen() {
		t.Fatal("a breaker with a negative threshold opened")
	}
}

// A breaker opens when most calls were slow in slowWindows windows in a
// row, and not when slow calls are a minority or stop after one window.
func TestBreakerOpensOnSlowness(t *testing.T) {
	const slow = 100 * time.Millisecond
	const step = 50 * time.Millisecond // 20 calls a second
	tests := []struct {
		name   string
		isSlow func(i int) bool // whether call i is slow
		want   bool
	}{
		{"ok, every call slow", func(int) bool { return true }, true},
		{"ok, 2 calls in 3 slow", func(i int) bool { return i%3 != 0 }, true},
		{"nok, 1 call in 3 slow", func(i int) bool { return i%3 == 0 }, false},
		{"nok, every call slow for a second, then quick", func(i int) bool { return i < 20 }, false},
		{"nok, no call slow", func(int) bool { return false }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b breaker
			b.configure(5, slow)
			start := int64(1_000_000_000)
			opened := false
			for i := 0; i < 100 && !opened; i++ { // 5 seconds
				took := time.Millisecond
				if tt.isSlow(i) {
					took = slow
				}
				opened = b.answered(start+int64(i)*int64(step), took)
			}
			if opened != tt.want || b.isOpen() != tt.want {
				t.Errorf("opened = %v, isOpen = %v; want %v", opened, b.isOpen(), tt.want)
			}
		})
	}
}

// Slow failures (timeouts) count as slow calls, even when quick answers
// between them keep the run of failures short.
func TestBreakerSlowFailures(t *testing.T) {
	var b breaker
	b.configure(5, 100*time.Millisecond)
	now := int64(1_000_000_000)
	step := int64(50 * time.Millisecond)
	opened := false
	for i := 0; i < 60 && !opened; i++ {
		at := now + int64(i)*step
		if i%3 == 2 {
			opened = b.answered(at, time.Millisecond)
		} else {
			_, opened = b.failure(at, 200*time.Millisecond)
		}
	}
	if !opened {
		t.Fatal("two timeouts in three calls for 3s did not open the breaker")
	}
}
