package pongotag_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/keyspace"
	"github.com/echocache/echocache/pongotag"
	"github.com/echocache/echocache/stores"
)

func TestHitServesStoredOutput(t *testing.T) {
	c, spy, _ := newCache(t)
	var n counter
	tpl := mustParse(t, `a{% cache 30 %}[{{ next() }}]{% endcache %}b`)
	ctx := pongo2.Context{pongotag.CacheVar: c, "next": n.next}
	for i, want := range []string{"a[1]b", "a[1]b", "a[1]b"} {
		if got := render(t, tpl, ctx); got != want {
			t.Errorf("render %d = %q; want %q", i+1, got, want)
		}
	}
	if got := n.n.Load(); got != 1 {
		t.Errorf("body ran %d times; want 1", got)
	}
	if s := c.Stats(); s.Hits != 2 || s.Misses != 1 || s.Stores != 1 {
		t.Errorf("stats = %+v; want 2 hits, 1 miss, 1 store", s)
	}
	if got := spy.onlyTTL(t); got != 30*time.Second {
		t.Errorf("TTL sent to the store = %v; want 30s", got)
	}
	for _, k := range spy.keysGot() {
		if !strings.HasPrefix(k, keyspace.Fragment) {
			t.Errorf("key %q is not in the %q namespace", k, keyspace.Fragment)
		}
	}
}

func TestTTLForms(t *testing.T) {
	cases := []struct {
		name string
		tag  string
		ctx  pongo2.Context
		want time.Duration
	}{
		{"ok, integer seconds", `{% cache 30 %}`, nil, 30 * time.Second},
		{"ok, duration string", `{% cache "5m" %}`, nil, 5 * time.Minute},
		{"ok, compound duration", `{% cache "1h30m" %}`, nil, 90 * time.Minute},
		{"ok, seconds in a string", `{% cache "45" %}`, nil, 45 * time.Second},
		{"ok, zero is the cache default", `{% cache 0 %}`, nil, echocache.DefaultTTL},
		{"ok, negative never expires", `{% cache -1 %}`, nil, -time.Second},
		{"ok, arithmetic", `{% cache 60*5 %}`, nil, 300 * time.Second},
		{"ok, decimal seconds", `{% cache 0.5 %}`, nil, 500 * time.Millisecond},
		{"ok, variable int", `{% cache ttl %}`, pongo2.Context{"ttl": 12}, 12 * time.Second},
		{"ok, variable int64", `{% cache ttl %}`, pongo2.Context{"ttl": int64(13)}, 13 * time.Second},
		{"ok, variable float", `{% cache ttl %}`, pongo2.Context{"ttl": 1.5}, 1500 * time.Millisecond},
		{"ok, variable duration", `{% cache ttl %}`, pongo2.Context{"ttl": 2 * time.Hour}, 2 * time.Hour},
		{"ok, variable duration string", `{% cache ttl %}`, pongo2.Context{"ttl": "90s"}, 90 * time.Second},
		{"ok, filter", `{% cache ttl|default:7 %}`, pongo2.Context{}, 7 * time.Second},
		{"ok, Flask-Caching comma", `{% cache 60*5, "myform" %}`, nil, 300 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, spy, logs := newCache(t)
			ctx := pongo2.Context{pongotag.CacheVar: c}
			ctx.Update(tc.ctx)
			render(t, mustParse(t, tc.tag+`x{% endcache %}`), ctx)
			if got := spy.onlyTTL(t); got != tc.want {
				t.Errorf("%s: store got TTL %v; want %v", tc.tag, got, tc.want)
			}
			if l := logs.text(); l != "" {
				t.Errorf("unexpected warnings: %s", l)
			}
		})
	}
}

func TestTTLDelDeletesAndRendersUncached(t *testing.T) {
	c, spy, _ := newCache(t)
	var n counter
	tpl := mustParse(t, `{% cache ttl %}{{ next() }}{% endcache %}`)
	run := func(ttl any) string {
		return render(t, tpl, pongo2.Context{pongotag.CacheVar: c, "next": n.next, "ttl": ttl})
	}
	steps := []struct {
		ttl  any
		want string
	}{
		{30, "1"},    // miss, stored
		{30, "1"},    // hit
		{"del", "2"}, // deleted, rendered uncached
		{30, "3"},    // the entry is gone: miss
		{30, "3"},    // hit again
	}
	for i, s := range steps {
		if got := run(s.ttl); got != s.want {
			t.Errorf("step %d (ttl %v) = %q; want %q", i+1, s.ttl, got, s.want)
		}
	}
	if got := spy.deletes.Load(); got != 1 {
		t.Errorf("store deletes = %d; want 1", got)
	}
	if got := spy.sets.Load(); got != 2 {
		t.Errorf("store sets = %d; want 2 (del must not store)", got)
	}
}

func TestLiteralDelDeletesNamedBlock(t *testing.T) {
	c, _, _ := newCache(t)
	var n counter
	ctx := pongo2.Context{pongotag.CacheVar: c, "next": n.next}
	show := mustParse(t, `{% cache 30 "box" %}{{ next() }}{% endcache %}`)
	purge := mustParse(t, `{% cache "del" "box" %}{{ next() }}{% endcache %}`)
	if got := render(t, show, ctx) + render(t, show, ctx); got != "11" {
		t.Fatalf("show twice = %q; want 11", got)
	}
	if got := render(t, purge, ctx); got != "2" {
		t.Errorf("del render = %q; want 2 (uncached)", got)
	}
	if got := render(t, show, ctx); got != "3" {
		t.Errorf("show after del = %q; want 3 (entry deleted)", got)
	}
}

func TestBadRuntimeTTLRendersUncachedWithWarning(t *testing.T) {
	for _, ttl := range []any{"soon", true, []int{1}, nil} {
		t.Run(fmt.Sprintf("%T", ttl), func(t *testing.T) {
			c, spy, logs := newCache(t)
			var n counter
			tpl := mustParse(t, `{% cache ttl %}{{ next() }}{% endcache %}`)
			ctx := pongo2.Context{pongotag.CacheVar: c, "next": n.next, "ttl": ttl}
			if got := render(t, tpl, ctx) + render(t, tpl, ctx); got != "12" {
				t.Errorf("two renders = %q; want 12 (uncached)", got)
			}
			if spy.gets.Load() != 0 || spy.sets.Load() != 0 {
				t.Errorf("store was used: %d gets, %d sets", spy.gets.Load(), spy.sets.Load())
			}
			if l := logs.text(); !strings.Contains(l, "<string> line 1 col 4") || !strings.Contains(l, "TTL") {
				t.Errorf("warning = %q; want one naming the template, position and TTL", l)
			}
		})
	}
}

func TestVaryOnValues(t *testing.T) {
	c, _, _ := newCache(t)
	var n counter
	tpl := mustParse(t, `{% cache 30 "greet" user, lang %}{{ next() }}:{{ user }}/{{ lang }}{% endcache %}`)
	run := func(user, lang string) string {
		return render(t, tpl, pongo2.Context{pongotag.CacheVar: c, "next": n.next, "user": user, "lang": lang})
	}
	steps := []struct{ user, lang, want string }{
		{"ann", "en", "1:ann/en"},
		{"bob", "en", "2:bob/en"},
		{"ann", "fr", "3:ann/fr"},
		{"ann", "en", "1:ann/en"},
		{"bob", "en", "2:bob/en"},
	}
	for i, s := range steps {
		if got := run(s.user, s.lang); got != s.want {
			t.Errorf("step %d (%s, %s) = %q; want %q", i+1, s.user, s.lang, got, s.want)
		}
	}
}

func TestVaryOnUnkeyableValueRendersUncached(t *testing.T) {
	c, spy, logs := newCache(t)
	var n counter
	tpl := mustParse(t, `{% cache 30 "f" ch %}{{ next() }}{% endcache %}`)
	ctx := pongo2.Context{pongotag.CacheVar: c, "next": n.next, "ch": make(chan int)}
	if got := render(t, tpl, ctx) + render(t, tpl, ctx); got != "12" {
		t.Errorf("two renders = %q; want 12 (uncached)", got)
	}
	if spy.gets.Load() != 0 {
		t.Errorf("store gets = %d; want 0", spy.gets.Load())
	}
	if l := logs.text(); !strings.Contains(l, "vary-on value 1") || !strings.Contains(l, "chan int") {
		t.Errorf("warning = %q; want one naming the value", l)
	}
}

func TestSetInsideBlockStaysInside(t *testing.T) {
	c, _, _ := newCache(t)
	tpl := mustParse(t, `{% cache 30 %}{% set x = "in" %}[{{ x }}]{% endcache %}({{ x }})`)
	for _, ctx := range []pongo2.Context{{pongotag.CacheVar: c}, {pongotag.CacheVar: c}, {}} {
		if got := render(t, tpl, ctx); got != "[in]()" {
			t.Errorf("render = %q; want [in]() on miss, hit and uncached alike", got)
		}
	}
}

func TestWhichCache(t *testing.T) {
	t.Cleanup(func() { pongotag.SetDefaultCache(nil) })
	ctxCache, ctxSpy, _ := newCache(t)
	globalCache, globalSpy, _ := newCache(t)
	defCache, defSpy, _ := newCache(t)
	set := pongo2.NewSet(t.Name(), pongo2.MustNewLocalFileSystemLoader(""))
	tpl, err := set.FromString(`{% cache 30 %}{{ next() }}{% endcache %}`)
	if err != nil {
		t.Fatal(err)
	}
	var n counter
	sets := func() [3]int64 { return [3]int64{ctxSpy.sets.Load(), globalSpy.sets.Load(), defSpy.sets.Load()} }

	// No cache anywhere: uncached.
	if got := render(t, tpl, pongo2.Context{"next": n.next}) + render(t, tpl, pongo2.Context{"next": n.next}); got != "12" {
		t.Errorf("without a cache: %q; want 12", got)
	}
	// A cache without a store: uncached.
	if got := render(t, tpl, pongo2.Context{"next": n.next, pongotag.CacheVar: echocache.New(nil)}); got != "3" {
		t.Errorf("cache without store: %q; want 3", got)
	}
	pongotag.SetDefaultCache(defCache)
	if pongotag.DefaultCache() != defCache {
		t.Fatal("DefaultCache does not return the cache set")
	}
	render(t, tpl, pongo2.Context{"next": n.next})
	if got := sets(); got != [3]int64{0, 0, 1} {
		t.Errorf("with a default only, sets per cache = %v; want the default's", got)
	}
	set.Globals[pongotag.CacheVar] = globalCache
	render(t, tpl, pongo2.Context{"next": n.next})
	if got := sets(); got != [3]int64{0, 1, 1} {
		t.Errorf("with a global, sets per cache = %v; want the global's", got)
	}
	render(t, tpl, pongo2.Context{"next": n.next, pongotag.CacheVar: ctxCache})
	if got := sets(); got != [3]int64{1, 1, 1} {
		t.Errorf("with a context cache, sets per cache = %v; want the context's", got)
	}
}

func TestStoreErrorsRenderUncached(t *testing.T) {
	spy := newSpy(newMemory(t))
	spy.remote = true
	c, spy, logs := newCacheOver(t, spy)
	var n counter
	tpl := mustParse(t, `<p>{% cache 30 %}{{ next() }}{% endcache %}</p>`)
	ctx := pongo2.Context{pongotag.CacheVar: c, "next": n.next}

	spy.failGet.Store(true)
	spy.failSet.Store(true)
	for i, want := range []string{"<p>1</p>", "<p>2</p>"} {
		out, err := tpl.Execute(ctx)
		if err != nil || out != want {
			t.Errorf("render %d with a broken store = %q, %v; want %q, nil", i+1, out, err, want)
		}
	}
	if s := c.Stats(); s.StoreErrors == 0 {
		t.Errorf("stats = %+v; want store errors counted", s)
	}
	// A store that could not answer the lookup is not waited for again.
	if gets, sets := spy.gets.Load(), spy.sets.Load(); gets != 2 || sets != 0 {
		t.Errorf("with failing lookups, store gets = %d, sets = %d; want 2 (one per render), 0", gets, sets)
	}
	if l := logs.text(); !strings.Contains(l, errBroken.Error()) {
		t.Errorf("log = %q; want the store error", l)
	}

	// The store answers again: caching resumes.
	spy.failGet.Store(false)
	spy.failSet.Store(false)
	if got := render(t, tpl, ctx) + render(t, tpl, ctx); got != "<p>3</p><p>3</p>" {
		t.Errorf("after recovery = %q; want <p>3</p> twice", got)
	}
}

// slowStore blocks every call until its context ends.
type slowStore struct{ stores.Store }

func (slowStore) Get(ctx context.Context, key string) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (slowStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestStoreTimeoutRendersUncached(t *testing.T) {
	logs := &logRecorder{}
	c, err := echocache.NewWithConfig(slowStore{newMemory(t)}, echocache.Config{StoreTimeout: 5 * time.Millisecond, Logger: logs})
	if err != nil {
		t.Fatal(err)
	}
	out, err := mustParse(t, `a{% cache 30 %}b{% endcache %}c`).Execute(pongo2.Context{pongotag.CacheVar: c})
	if err != nil || out != "abc" {
		t.Errorf("render over a store that times out = %q, %v; want abc, nil", out, err)
	}
	if !strings.Contains(logs.text(), "deadline") {
		t.Errorf("log = %q; want the timeout", logs.text())
	}
}

func TestNestedBlocks(t *testing.T) {
	c, spy, _ := newCache(t)
	var outer, inner counter
	tpl := mustParse(t, `{% cache 30 "outer" %}O{{ o() }}{% cache 30 "inner" %}I{{ i() }}{% endcache %}{% endcache %}`)
	ctx := pongo2.Context{pongotag.CacheVar: c, "o": outer.next, "i": inner.next}
	if got := render(t, tpl, ctx); got != "O1I1" {
		t.Fatalf("first render = %q; want O1I1", got)
	}
	innerKey, _ := pongotag.FragmentKey("inner")
	outerKey, _ := pongotag.FragmentKey("outer")

	// An outer hit does not even look the inner block up.
	before := spy.gets.Load()
	if got := render(t, tpl, ctx); got != "O1I1" {
		t.Errorf("outer hit = %q; want O1I1", got)
	}
	if got := spy.gets.Load() - before; got != 1 {
		t.Errorf("store gets on an outer hit = %d; want 1 (the outer block)", got)
	}
	for _, k := range spy.keysGot()[before:] {
		if k == innerKey {
			t.Errorf("the inner block was looked up on an outer hit")
		}
	}

	// The outer block expires: it renders again around the inner hit.
	if err := c.DeleteFragment(context.Background(), outerKey); err != nil {
		t.Fatal(err)
	}
	if got := render(t, tpl, ctx); got != "O2I1" {
		t.Errorf("outer miss over inner hit = %q; want O2I1", got)
	}
	if got := inner.n.Load(); got != 1 {
		t.Errorf("inner body ran %d times; want 1", got)
	}
}

func TestAutoescapeOnce(t *testing.T) {
	c, _, _ := newCache(t)
	cases := []struct{ name, src, want string }{
		{"ok, escaped", `{% cache 30 %}{{ s }}{% endcache %}`, "&lt;b&gt;&amp;&#39;&quot;"},
		{"ok, safe", `{% cache 30 %}{{ s|safe }}{% endcache %}`, `<b>&'"`},
		{"ok, autoescape off", `{% autoescape off %}{% cache 30 %}{{ s }}{% endcache %}{% endautoescape %}`, `<b>&'"`},
		{"ok, escape filter", `{% cache 30 %}&amp; {{ s|escape }}{% endcache %}`, ""},
		{"ok, escapejs", `{% cache 30 %}<script>var s = "{{ s|escapejs }}";</script>{% endcache %}`, ""},
		{"ok, nested blocks", `{% cache 30 %}{{ s }}{% cache 30 "in" %}{{ s }}{% endcache %}{% endcache %}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tpl := mustParse(t, tc.src)
			uncached := render(t, tpl, pongo2.Context{"s": `<b>&'"`})
			if tc.want != "" && uncached != tc.want {
				t.Fatalf("uncached = %q; want %q", uncached, tc.want)
			}
			ctx := pongo2.Context{pongotag.CacheVar: c, "s": `<b>&'"`}
			miss, hit := render(t, tpl, ctx), render(t, tpl, ctx)
			if miss != uncached || hit != uncached {
				t.Errorf("miss = %q, hit = %q; want %q (uncached) for both", miss, hit, uncached)
			}
		})
	}
}

// The autoescape mode is part of an unnamed block's key: a page rendered
// with autoescape off never gets the escaped output, nor the reverse.
func TestAutoescapeModeIsPartOfKey(t *testing.T) {
	c, _, _ := newCache(t)
	tpl := mustParse(t, `{% cache 30 %}{{ s }}{% endcache %}`)
	ctx := pongo2.Context{pongotag.CacheVar: c, "s": "<i>"}
	if got := render(t, tpl, ctx); got != "&lt;i&gt;" {
		t.Fatalf("escaped render = %q", got)
	}
	pongo2.SetAutoescape(false)
	defer pongo2.SetAutoescape(true)
	if got := render(t, tpl, ctx); got != "<i>" {
		t.Errorf("render with autoescape off = %q; want <i>", got)
	}
}

func TestConcurrentColdRendersRunBodyOnce(t *testing.T) {
	const renders = 8
	c, spy, _ := newCache(t)
	tpl := mustParse(t, `{% cache 30 %}{{ body() }}{% endcache %}`)

	// Every render looks the block up and misses before the first body
	// may finish; without sharing, each would then run the body.
	var misses atomic.Int64
	allMissed := make(chan struct{})
	spy.afterGet = func(key string, err error) {
		if err != nil && misses.Add(1) == renders {
			close(allMissed)
		}
	}
	release := make(chan struct{})
	var bodies counter
	body := func() string {
		bodies.next()
		<-release
		return "rendered"
	}

	var wg sync.WaitGroup
	outs := make([]string, renders)
	errs := make([]error, renders)
	for i := range renders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = tpl.Execute(pongo2.Context{pongotag.CacheVar: c, "body": body})
		}()
	}
	<-allMissed
	close(release)
	wg.Wait()
	for i := range renders {
		if errs[i] != nil || outs[i] != "rendered" {
			t.Errorf("render %d = %q, %v; want rendered", i, outs[i], errs[i])
		}
	}
	if got := bodies.n.Load(); got != 1 {
		t.Errorf("body ran %d times for %d concurrent renders; want 1", got, renders)
	}
}

func TestConcurrentRendersMixedKeysRace(t *testing.T) {
	c, _, _ := newCache(t)
	tpl := mustParse(t, `{% for i in items %}{% cache 30 "item" i %}<{{ i }}>{% endcache %}{% endfor %}{% cache 30 %}tail{% endcache %}`)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 20 {
				items := []int{r % 5, (r + g) % 7}
				want := fmt.Sprintf("<%d><%d>tail", items[0], items[1])
				out, err := tpl.Execute(pongo2.Context{pongotag.CacheVar: c, "items": items})
				if err != nil || out != want {
					t.Errorf("render = %q, %v; want %q", out, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestBodyErrorIsReturnedAndNothingStored(t *testing.T) {
	c, spy, _ := newCache(t)
	tpl := mustParse(t, `{% cache 30 %}{{ boom() }}{% endcache %}`)
	boom := func() (string, error) { return "", fmt.Errorf("kaput") }
	_, err := tpl.Execute(pongo2.Context{pongotag.CacheVar: c, "boom": boom})
	if err == nil || !strings.Contains(err.Error(), "kaput") {
		t.Errorf("render error = %v; want the body's error", err)
	}
	if spy.sets.Load() != 0 {
		t.Errorf("a failed body was stored")
	}
}

func TestRequestContextReachesStore(t *testing.T) {
	type ctxKey struct{}
	c, spy, _ := newCache(t)
	reqCtx := context.WithValue(context.Background(), ctxKey{}, "req")
	e := newEchoContext(reqCtx)
	render(t, mustParse(t, `{% cache 30 %}x{% endcache %}`), pongo2.Context{pongotag.CacheVar: c, pongotag.EchoVar: e})
	spy.mu.Lock()
	defer spy.mu.Unlock()
	if len(spy.ctxs) == 0 || spy.ctxs[0].Value(ctxKey{}) != "req" {
		t.Errorf("the store did not get the request's context")
	}
}
