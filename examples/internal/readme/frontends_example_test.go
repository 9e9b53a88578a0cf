package readme_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

// The README's Echo v5 view serves its first answer again until it
// expires.
func Example_echoV5() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	h := newEchoV5Server(store)
	var bodies []string
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		bodies = append(bodies, rec.Body.String())
		fmt.Println(rec.Header().Get("X-Cache"))
	}
	fmt.Println(bodies[0] == bodies[1])
	// Output:
	// MISS
	// HIT
	// true
}

// The README's net/http page, from concurrent requests (go test -race
// checks the handler's counter).
func Example_netHTTP() {
	store, _ := stores.NewMemory(stores.MemoryConfig{})
	mux := newMux(echocache.New(store))
	done := make(chan struct{})
	for range 4 {
		go func() {
			mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/?draft", nil))
			done <- struct{}{}
		}()
	}
	for range 4 {
		<-done
	}
	for _, target := range []string{"/", "/"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Println(target, rec.Header().Get("X-Cache"), rec.Body.String())
	}
	// Output:
	// / MISS rendered 5 time(s)
	// / HIT rendered 5 time(s)
}
