package pongotag_test

import (
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/pongotag"
	"github.com/echocache/echocache/stores"
	"github.com/echocache/echocache/stores/storetest"
)

// backends returns, per backend, a function opening a store URL with a
// namespace of its own for the test. Every call of the returned function
// opens a new connection to the same namespace, as another process would.
func backends(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"memory": func(t *testing.T) string { return "memory://" },
		"redis": func(t *testing.T) string {
			return servertest.Redis(t) + "?prefix=" + url.QueryEscape(storetest.Namespace(t))
		},
		"redis-cluster": func(t *testing.T) string {
			return "redis+cluster://" + strings.Join(servertest.RedisClusterAddrs(t), ",") + "/?prefix=" + url.QueryEscape(storetest.Namespace(t))
		},
		"redis-sentinel": func(t *testing.T) string {
			addrs, master := servertest.RedisSentinelAddrs(t)
			return "redis+sentinel://" + strings.Join(addrs, ",") + "/" + master + "?prefix=" + url.QueryEscape(storetest.Namespace(t))
		},
		"memcached": func(t *testing.T) string {
			return "memcached://" + servertest.Memcached(t) + "?prefix=" + url.QueryEscape(strings.ReplaceAll(storetest.Namespace(t), ":", "_"))
		},
	}
}

func openCache(t *testing.T, rawURL string) *echocache.Cache {
	t.Helper()
	s, err := stores.Open(t.Context(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	logs := &logRecorder{}
	// A generous store timeout: on a loaded CI machine under the race
	// detector a real server can take longer than the 250ms default, and
	// these tests check caching, not fail-open (tag_test.go does that).
	c, err := echocache.NewWithConfig(s, echocache.Config{Logger: logs, StoreTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l := logs.text(); l != "" {
			t.Errorf("cache warnings: %s", l)
		}
	})
	return c
}

var storeTemplates = fstest.MapFS{
	"page.html": file(`<h3>{{ title }}</h3>
<% cache 30 %><p>quote {{ quote() }}</p><% endcache %>
{% cache "1m" "user-card" user %}<div>{{ user.Name }} {{ quote() }}</div>{% endcache %}
{% cache 30 %}{% for i in items %}{% cache 30 "item" i %}<i>{{ i }} {{ quote() }}</i>{% endcache %}{% endfor %}{% endcache %}`),
}

func TestStores(t *testing.T) {
	for name, storeURL := range backends(t) {
		t.Run(name, func(t *testing.T) {
			rawURL := storeURL(t)
			c := openCache(t, rawURL)
			r := pongotag.NewRenderer(storeTemplates, c)
			var n counter
			page := func(r *pongotag.Renderer, who goldenUser) string {
				t.Helper()
				var sb strings.Builder
				err := r.Render(&sb, "page.html", pongo2.Context{"title": "T", "quote": n.next, "user": who, "items": []int{1, 2}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return sb.String()
			}
			ann, bob := goldenUser{1, "ann"}, goldenUser{2, "bob"}
			want1 := "<h3>T</h3>\n<p>quote 1</p>\n<div>ann 2</div>\n<i>1 3</i><i>2 4</i>"
			if got := page(r, ann); got != want1 {
				t.Fatalf("first page = %q; want %q", got, want1)
			}
			if got := page(r, ann); got != want1 {
				t.Errorf("second page = %q; want the cached %q", got, want1)
			}
			if got, want := page(r, bob), "<h3>T</h3>\n<p>quote 1</p>\n<div>bob 5</div>\n<i>1 3</i><i>2 4</i>"; got != want {
				t.Errorf("bob's page = %q; want %q", got, want)
			}

			// Deleting a named fragment by name and vary-on value.
			if err := pongotag.DeleteFragment(t.Context(), c, "user-card", ann); err != nil {
				t.Fatal(err)
			}
			if got, want := page(r, ann), "<h3>T</h3>\n<p>quote 1</p>\n<div>ann 6</div>\n<i>1 3</i><i>2 4</i>"; got != want {
				t.Errorf("after deleting ann's card = %q; want %q", got, want)
			}

			if name == "memory" {
				return // nothing is shared with another process
			}
			// Another process (new connection, new parse) finds every
			// fragment, unnamed ones included: keys do not depend on the
			// process.
			other := pongotag.NewRenderer(storeTemplates, openCache(t, rawURL))
			if got, want := page(other, ann), "<h3>T</h3>\n<p>quote 1</p>\n<div>ann 6</div>\n<i>1 3</i><i>2 4</i>"; got != want {
				t.Errorf("page in another process = %q; want %q", got, want)
			}
		})
	}
}

func TestStoresConcurrentColdBlock(t *testing.T) {
	for name, storeURL := range backends(t) {
		t.Run(name, func(t *testing.T) {
			c := openCache(t, storeURL(t))
			tpl := mustParse(t, `{% cache 30 %}{{ body() }}{% endcache %}`)
			var bodies counter
			release := make(chan struct{})
			body := func() string {
				if bodies.next() == 1 {
					<-release
				}
				return "ok"
			}
			var wg sync.WaitGroup
			started := make(chan struct{}, 8)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					started <- struct{}{}
					if out, err := tpl.Execute(pongo2.Context{pongotag.CacheVar: c, "body": body}); err != nil || out != "ok" {
						t.Errorf("render = %q, %v", out, err)
					}
				}()
			}
			for range 8 {
				<-started
			}
			close(release)
			wg.Wait()
			if got := bodies.n.Load(); got != 1 {
				t.Errorf("body ran %d times; want 1", got)
			}
		})
	}
}

// A fragment larger than the memcached store's largest value renders,
// uncached, and does not count as a store failure.
func TestMemcachedFragmentTooLarge(t *testing.T) {
	c := openCache(t, backends(t)["memcached"](t)+"&max_value_size=64KiB")
	big := string(storetest.Incompressible(100 << 10)) // too large for the store, compressed or not
	tpl := mustParse(t, `{% cache 30 %}{{ big }}{% endcache %}`)
	for range 2 {
		if out := render(t, tpl, pongo2.Context{pongotag.CacheVar: c, "big": big}); out != big {
			t.Fatalf("render of a large block returned %d bytes; want %d", len(out), len(big))
		}
	}
	if s := c.Stats(); s.Bypasses["too-large"] != 2 || s.StoreErrors != 0 {
		t.Errorf("stats = %+v; want 2 too-large bypasses and no store errors", s)
	}
}
