package stores

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A memory store reports its fill and counts the entries it evicts to
// make room, and only those: deletions, overwrites and expirations are
// not evictions.
func TestMemoryStats(t *testing.T) {
	m, err := NewMemory(MemoryConfig{MaxBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var _ StatsReporter = m
	ctx := context.Background()
	if got := m.Stats(); got != (StoreStats{MaxBytes: 64 << 10}) {
		t.Fatalf("empty store Stats() = %+v; want only MaxBytes", got)
	}
	val := make([]byte, 1000)
	for i := range 10 {
		_ = m.Set(ctx, fmt.Sprint("k", i), val, time.Minute)
	}
	_ = m.Set(ctx, "k0", val, time.Minute) // an overwrite
	_ = m.Delete(ctx, "k1")
	st := m.Stats() // current without a CleanUp of the test's own
	if st.Entries != 9 || st.Evictions != 0 {
		t.Errorf("after 10 sets, an overwrite and a delete: Stats() = %+v; want 9 entries, no evictions", st)
	}
	if want := 9 * entrySize("k2", val); st.Bytes != want {
		t.Errorf("Bytes = %d; want %d", st.Bytes, want)
	}

	for i := range 200 { // 200 KB into 64 KiB
		_ = m.Set(ctx, fmt.Sprint("big", i), val, time.Minute)
	}
	st = m.Stats()
	if st.Evictions == 0 || st.Bytes > st.MaxBytes || st.Entries == 0 {
		t.Errorf("after overfilling: Stats() = %+v; want evictions, Bytes within MaxBytes", st)
	}
}
