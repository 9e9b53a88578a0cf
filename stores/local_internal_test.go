package stores

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeShared is a store the tier accepts, for the tests of the tier's own
// bookkeeping.
type fakeShared struct{ *Null }

func newTestTier(t *testing.T) *LocalTier {
	t.Helper()
	tier, err := NewLocalTier(fakeShared{&Null{}}, LocalConfig{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tier.Close() })
	return tier
}

// TestLocalTierFillRace checks the guard against the race of client-side
// caching: a value read from the shared store before another process's
// write, whose announcement arrives while the read is in flight, must not
// be kept once the announcement has been handled.
func TestLocalTierFillRace(t *testing.T) {
	v := expiring{v: []byte("old"), left: NoExpiry, known: true}
	tests := []struct {
		name   string
		during func(tier *LocalTier) // what happens while the read is in flight
		kept   bool
	}{
		{"ok, nothing happened", func(*LocalTier) {}, true},
		{"ok, a key of another stripe announced", func(tier *LocalTier) { tier.invalidate(otherStripe(tier, "k")) }, true},
		{"nok, the key announced", func(tier *LocalTier) { tier.invalidate("k") }, false},
		{"nok, every key flushed", func(tier *LocalTier) { tier.flush() }, false},
		{"nok, the connection lost and back", func(tier *LocalTier) { tier.partDown(); tier.partUp() }, false},
		{"nok, the connection lost", func(tier *LocalTier) { tier.partDown() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tier := newTestTier(t)
			tk := tier.ticket("k")
			tt.during(tier)
			tier.fill(tk, "k", v)
			tier.down.Store(0)
			_, kept := tier.lookup("k")
			if kept != tt.kept {
				t.Errorf("after %s, a copy kept = %v; want %v", tt.name, kept, tt.kept)
			}
		})
	}
}

// otherStripe returns a key whose invalidation counter is not key's.
func otherStripe(tier *LocalTier, key string) string {
	for i := 0; ; i++ {
		k := "other-" + strconv.Itoa(i)
		if tier.stripe(k) != tier.stripe(key) {
			return k
		}
	}
}

// TestLocalTierDownReadsNothing checks that the tier answers nothing from
// memory while a part of its channel is down.
func TestLocalTierDownReadsNothing(t *testing.T) {
	tier := newTestTier(t)
	tier.fill(tier.ticket("k"), "k", expiring{v: []byte("v"), left: NoExpiry, known: true})
	if _, ok := tier.lookup("k"); !ok {
		t.Fatal("lookup(k) after a fill = miss; want a hit")
	}
	tier.down.Add(1) // a part down, without the flush that comes with it
	if _, _, ok := tier.viewLocal("k"); ok {
		t.Error("viewLocal(k) while a part of the channel is down = hit; want none")
	}
	if tk := tier.ticket("k"); tk.ok {
		t.Error("ticket(k) while down allows a fill")
	}
}

// TestLocalTierLifetime checks how long a copy may live.
func TestLocalTierLifetime(t *testing.T) {
	tier := newTestTier(t) // no channel: MaxAge is DefaultLocalMaxAge
	if tier.maxAge != DefaultLocalMaxAge {
		t.Fatalf("maxAge = %v; want %v", tier.maxAge, DefaultLocalMaxAge)
	}
	for _, tt := range []struct {
		name string
		e    expiring
		want bool // a copy is kept
	}{
		{"ok, no expiry: MaxAge bounds it", expiring{left: NoExpiry, known: true}, true},
		{"ok, unknown: MaxAge bounds it", expiring{}, true},
		{"ok, expires in an hour", expiring{left: 3600e9, known: true}, true},
		{"nok, expires now", expiring{known: true}, false},
	} {
		tier.fill(tier.ticket(tt.name), tt.name, expiring{v: []byte("v"), left: tt.e.left, known: tt.e.known})
		e, ok := tier.mem.cache.GetEntry(tt.name)
		if ok != tt.want {
			t.Errorf("%s: kept = %v; want %v", tt.name, ok, tt.want)
			continue
		}
		if left := e.ExpiresAfter(); left > DefaultLocalMaxAge {
			t.Errorf("%s: the copy lives %v; want at most %v", tt.name, left, DefaultLocalMaxAge)
		}
	}
	tier.maxAge = 0 // as in front of redis
	tier.fill(tier.ticket("unknown"), "unknown", expiring{v: []byte("v")})
	if _, ok := tier.lookup("unknown"); ok {
		t.Error("a copy of unknown lifetime kept with no MaxAge to bound it")
	}
	tier.fill(tier.ticket("short"), "short", expiring{v: []byte("v"), left: 2e9, known: true})
	if e, ok := tier.mem.cache.GetEntry("short"); !ok || e.ExpiresAfter() > 2e9 {
		t.Errorf("a copy of an entry with 2s left lives %v; want at most 2s", e.ExpiresAfter())
	}
}

func TestMemcachedExpiring(t *testing.T) {
	now := time.Unix(1_000_000, 500_000_000)
	tests := []struct {
		name     string
		exp      uint32
		wantLeft time.Duration
	}{
		{"ok, no expiry", 0, NoExpiry},
		{"ok, a second before the recorded one", 1_000_010, 8500 * time.Millisecond},
		{"ok, expires within the second: no copy", 1_000_001, 0},
		{"ok, expired: no copy", 999_000, 0},
		{"ok, a foreign item's small flags: no copy", 7, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := memcachedExpiring([]byte("v"), tt.exp, now)
			if !e.known || e.left != tt.wantLeft || string(e.v) != "v" {
				t.Errorf("memcachedExpiring(v, %d, %v) = %+v; want known, left %v", tt.exp, now, e, tt.wantLeft)
			}
		})
	}
}

// TestFileExpiring checks the time an entry of the file store has left as
// a tier reads it, by getExpiring and getManyExpiring, on the store's
// clock: what its file records, to the nanosecond.
func TestFileExpiring(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	f := testFile(t, FileConfig{MaxEntries: -1})
	f.now = clock.Now
	ctx := context.Background()
	require.NoError(t, f.Set(ctx, "short", []byte("s"), 1500*time.Millisecond))
	require.NoError(t, f.Set(ctx, "forever", []byte("f"), NoExpiry))
	clock.Add(time.Second)
	tests := []struct {
		name     string
		key      string
		wantLeft time.Duration
	}{
		{"ok, the rest of its ttl", "short", 500 * time.Millisecond},
		{"ok, no expiry", "forever", NoExpiry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := f.getExpiring(ctx, tt.key)
			require.NoError(t, err)
			assert.Equal(t, expiring{v: e.v, left: tt.wantLeft, known: true}, e, "getExpiring")
			many, err := f.getManyExpiring(ctx, []string{tt.key, "absent"})
			require.NoError(t, err)
			assert.Equal(t, map[string]expiring{tt.key: e}, many, "getManyExpiring")
		})
	}
	clock.Add(500 * time.Millisecond)
	_, err := f.getExpiring(ctx, "short")
	assert.ErrorIs(t, err, ErrNotFound, "getExpiring once the entry expired")
	many, err := f.getManyExpiring(ctx, []string{"short"})
	require.NoError(t, err)
	assert.Empty(t, many, "getManyExpiring once the entry expired")
}

// announcing is an invalidation channel that is always up, for the tests
// of a tier in front of a store that announces its changes.
type announcing struct{}

func (announcing) wait(context.Context) error { return nil }
func (announcing) close()                     {}

// TestLocalTierStamp checks the stamps that let echocache keep what it
// read (memoize's version token) without reading it again: a stamp holds
// until the key may have changed, whenever the copy read after it was
// dropped, and a tier that is not told of every change gives none.
func TestLocalTierStamp(t *testing.T) {
	tests := []struct {
		name  string
		after func(tier *LocalTier) // what happens after the stamp and the read
		holds bool
	}{
		{"ok, nothing happened", func(*LocalTier) {}, true},
		{"ok, a key of another stripe announced", func(tier *LocalTier) { tier.invalidate(otherStripe(tier, "k")) }, true},
		{"nok, the key announced", func(tier *LocalTier) { tier.invalidate("k") }, false},
		{"nok, every key flushed", func(tier *LocalTier) { tier.flush() }, false},
		{"nok, the connection lost", func(tier *LocalTier) { tier.partDown() }, false},
		{"nok, the connection lost and back", func(tier *LocalTier) { tier.partDown(); tier.partUp() }, false},
		{"nok, closed", func(tier *LocalTier) { tier.closed.Store(true) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tier := newTestTier(t)
			tier.channel = announcing{}
			st, ok := tier.watch("k")
			if !ok {
				t.Fatal("watch(k) on a coherent tier in front of an announcing store = no stamp")
			}
			tt.after(tier)
			if got := tier.unchanged(st); got != tt.holds {
				t.Errorf("unchanged(stamp) after %s = %v; want %v", tt.name, got, tt.holds)
			}
			tier.closed.Store(false) // for Close
		})
	}

	// A stamp taken while an invalidation or a flush is under way, after
	// its counter moved and before the copy is dropped, vouches for a copy
	// that is about to go: the counter moves again once it is gone.
	t.Run("nok, taken between the counter and the drop", func(t *testing.T) {
		tier := newTestTier(t)
		tier.channel = announcing{}
		tier.fill(tier.ticket("k"), "k", expiring{v: []byte("old"), left: NoExpiry, known: true})
		s := tier.stripe("k")
		s.Add(1) // invalidate("k") has begun
		st, _ := tier.watch("k")
		if _, _, ok := tier.viewLocal("k"); !ok {
			t.Fatal("viewLocal(k) before the drop = miss; want the old copy")
		}
		tier.mem.cache.Invalidate("k")
		s.Add(1) // and ends
		if tier.unchanged(st) {
			t.Error("unchanged(stamp) after the copy it vouched for was dropped = true; want false")
		}
		// invalidate and flush do move their counters so.
		n, e := s.Load(), tier.epoch.Load()
		tier.invalidate("k")
		tier.flush()
		if s.Load()-n != 2 || tier.epoch.Load()-e != 2 {
			t.Errorf("invalidate moved its counter by %d, flush the epoch by %d; want 2 each (before and after the drop)", s.Load()-n, tier.epoch.Load()-e)
		}
	})

	t.Run("ok, no stamp without announcements", func(t *testing.T) {
		tier := newTestTier(t) // in front of a store that announces nothing
		if _, ok := tier.watch("k"); ok {
			t.Error("watch(k) in front of a store without announcements gave a stamp; want none")
		}
	})
	t.Run("ok, no stamp while down", func(t *testing.T) {
		tier := newTestTier(t)
		tier.channel = announcing{}
		tier.down.Add(1)
		if _, ok := tier.watch("k"); ok {
			t.Error("watch(k) while the channel is down gave a stamp; want none")
		}
		tier.down.Add(-1)
	})
}
