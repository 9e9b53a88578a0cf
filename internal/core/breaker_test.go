package core

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	var b breaker
	b.configure(2, time.Second)
	const now = int64(1_000_000_000)
	if ok, _ := b.allow(now); !ok {
		t.Fatal("allow on a closed breaker = false; want true")
	}
	if n := b.failure(now); n != 0 {
		t.Fatalf("failure 1 of 2 opened the breaker (%d)", n)
	}
	if n := b.failure(now); n != 2 {
		t.Fatalf("failure 2 of 2 = %d; want 2 (opened)", n)
	}
	if ok, _ := b.allow(now + int64(time.Second) - 1); ok {
		t.Fatal("allow within the cooldown = true; want false")
	}
	ok, probe := b.allow(now + int64(time.Second))
	if !ok || !probe {
		t.Fatalf("allow after the cooldown = %v, probe %v; want one probe", ok, probe)
	}
	if ok, _ := b.allow(now + int64(time.Second)); ok {
		t.Fatal("a second call during the probe was allowed")
	}
	b.endProbe()
	if !b.success() {
		t.Fatal("success after a probe did not report closing")
	}
	if ok, probe := b.allow(now); !ok || probe {
		t.Fatalf("allow after closing = %v, probe %v; want a plain call", ok, probe)
	}

	var never breaker
	never.configure(-1, time.Second)
	for range 100 {
		if n := never.failure(now); n != 0 {
			t.Fatal("a breaker with a negative threshold opened")
		}
	}
}
