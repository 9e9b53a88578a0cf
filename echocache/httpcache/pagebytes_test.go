package httpcache_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/echocache/httpcache"
	"github.com/echocache/echocache/internal/routetest"
	"github.com/echocache/echocache/stores"
)

// pageBody is the body of the pages the size tests store: 1 KiB.
var pageBody = strings.Repeat("x", 1024)

// pageApp serves 1 KiB pages, cached for an hour in a memory store without
// a size bound, and returns it with the store.
func pageApp(tb testing.TB) (http.Handler, *stores.Memory) {
	tb.Helper()
	s, err := stores.NewMemory(stores.MemoryConfig{MaxBytes: 1 << 40})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	c := echocache.New(s)
	h := httpcache.Cached(c, time.Hour)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if lang := r.Header.Get("Accept-Language"); lang != "" {
			w.Header().Set("Vary", "Accept-Language")
			w.Header().Set("Content-Language", lang)
		}
		_, _ = w.Write([]byte(pageBody))
	}))
	return h, s
}

// TestOneEntryPerPage: a stored page is one entry of the store, one copy
// of its body: a page without Vary under its page key alone, the first
// variant of a page with Vary there too, each other variant under its
// variant key alone; and every variant is found again.
func TestOneEntryPerPage(t *testing.T) {
	h, s := pageApp(t)
	const n = 10
	for i := range n {
		routetest.Do(h, "", "/plain/"+strconv.Itoa(i))
	}
	if got := s.Stats().Entries; got != n {
		t.Fatalf("%d pages without Vary: %d store entries; want %d", n, got, n)
	}
	langs := []string{"en", "fr", "de"}
	for _, l := range langs {
		routetest.Do(h, "", "/varied", "Accept-Language", l)
	}
	if got, want := s.Stats().Entries, int64(n+len(langs)); got != want {
		t.Errorf("a page in %d variants: %d store entries in all; want %d", len(langs), got, want)
	}
	if b, max := s.Stats().Bytes, int64(n+len(langs))*(1024+512); b > max {
		t.Errorf("%d pages of 1 KiB take %d bytes of the store; want at most %d (one body each)", n+len(langs), b, max)
	}
	for _, l := range langs {
		rec := routetest.Do(h, "", "/varied", "Accept-Language", l)
		if rec.Header().Get("Content-Language") != l || rec.Body.String() != pageBody || !strings.Contains(rec.Header().Get("Cache-Status"), "hit") {
			t.Errorf("GET /varied in %s: Content-Language %q, Cache-Status %q; want a hit on its own variant", l, rec.Header().Get("Content-Language"), rec.Header().Get("Cache-Status"))
		}
	}
	for i := range n {
		if rec := routetest.Do(h, "", "/plain/"+strconv.Itoa(i)); !strings.Contains(rec.Header().Get("Cache-Status"), "hit") {
			t.Errorf("GET /plain/%d: Cache-Status %q; want a hit", i, rec.Header().Get("Cache-Status"))
		}
	}
}

// heapPerPage stores n 1 KiB pages through a route and returns the heap
// they hold, in bytes per page (runtime.MemStats.HeapAlloc after a GC,
// before and after).
func heapPerPage(tb testing.TB, n int) float64 {
	h, s := pageApp(tb)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		routetest.Do(h, "", "/page/"+strconv.Itoa(i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := s.Stats().Entries; got != int64(n) {
		tb.Fatalf("stored %d pages: %d entries; want %d", n, got, n)
	}
	runtime.KeepAlive(h)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// TestBytesPerPage: 100,000 cached pages of 1 KiB hold at most 1.5 KB
// each in the memory store: the body once, its record and the store's
// own entry.
func TestBytesPerPage(t *testing.T) {
	const n, max = 100_000, 1500
	if per := heapPerPage(t, n); per > max {
		t.Errorf("%d pages of 1 KiB hold %.0f bytes each; want at most %d", n, per, max)
	} else {
		t.Logf("%d pages of 1 KiB: %.0f bytes each", n, per)
	}
}

// BenchmarkBytesPerPage reports the heap a cached 1 KiB page holds in the
// memory store (bytes/page) at 10k, 100k and 1M pages (-benchtime=1x).
func BenchmarkBytesPerPage(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var per float64
			for range b.N {
				per = heapPerPage(b, n)
			}
			b.ReportMetric(per, "bytes/page")
		})
	}
}
