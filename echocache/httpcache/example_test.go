package httpcache_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/echocache/httpcache"
	"github.com/echocache/echocache/stores"
)

// A page of the standard mux, cached for 5 minutes; a handler can keep a
// response out of the cache with SetTTL(r, 0).
func ExampleCached() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	cache := echocache.New(store)
	cached := httpcache.Cached(cache, 5*time.Minute)
	mux := http.NewServeMux()
	var renders atomic.Int64 // handlers run concurrently
	mux.Handle("GET /", cached(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := renders.Add(1)
		if r.URL.Query().Has("draft") {
			httpcache.SetTTL(r, 0)
		}
		fmt.Fprintf(w, "rendered %d time(s)", n)
	})))

	for _, target := range []string{"/", "/", "/?draft", "/?draft"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Println(target, rec.Header().Get("X-Cache"), rec.Body.String())
	}
	// Output:
	// / MISS rendered 1 time(s)
	// / HIT rendered 1 time(s)
	// /?draft MISS rendered 2 time(s)
	// /?draft MISS rendered 3 time(s)
}
