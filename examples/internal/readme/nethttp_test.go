package readme_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/echocache/httpcache"
)

// The README's page on the standard mux, with its imports.
func newMux(cache *echocache.Cache) *http.ServeMux {
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
	return mux
}
