// Command clear-cache is the walkthrough's script that clears the cache. It
// empties the namespace (the prefix parameter) of the store named by
// $CACHE_URL: cached pages, function results, values and template
// fragments. Keys of other namespaces on the same server are left alone; it
// never flushes a redis database or a memcached server.
//
//	CACHE_URL='redis://127.0.0.1:6379/0?prefix=myapp:' go run ./examples/clear-cache
package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/examples/internal/demo"
	"github.com/echocache/echocache/stores"
)

func main() {
	rawURL := demo.CacheURL()
	if err := run(context.Background(), rawURL, os.Stdout); err != nil {
		demo.Fatal(fmt.Errorf("CACHE_URL %s: %w", demo.Redact(rawURL), err))
	}
}

// run clears the cache at rawURL and says what it did on out. Its errors
// do not repeat the URL.
func run(ctx context.Context, rawURL string, out io.Writer) error {
	cache := echocache.New(nil)

	store, err := stores.OpenAndPing(ctx, rawURL)
	if err != nil {
		return err
	}
	defer store.Close()
	cache.Init(store)

	if err := cache.Clear(ctx); err != nil {
		return fmt.Errorf("clearing the cache: %w", err)
	}
	fmt.Fprintf(out, "cleared %s\n", describe(rawURL))
	return nil
}

// describe names what Clear emptied at rawURL.
func describe(rawURL string) string {
	u, _ := url.Parse(rawURL) // OpenStore parsed it already
	switch u.Scheme {
	case "memory":
		return "memory:// (an in-process store: only this process's own, empty, cache; a running app's memory cache is not reachable from here)"
	case "null":
		return "null:// (it stores nothing)"
	}
	ns := "the default namespace"
	if p := u.Query().Get("prefix"); p != "" {
		ns = fmt.Sprintf("namespace %q", p)
	}
	return fmt.Sprintf("%s of %s; other namespaces are untouched", ns, demo.Redact(rawURL))
}
