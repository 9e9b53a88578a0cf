package integration

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/internal/syncbuf"
)

// A productionStep is one request to examples/production and what its
// response must say.
type productionStep struct {
	name   string
	method string
	header []string // name, value, ...
	// xCache is the X-Cache the response must carry ("" for none: a
	// bypassed request).
	xCache string
	// cacheStatus matches the whole Cache-Status (RFC 9211) it must carry.
	cacheStatus *regexp.Regexp
}

// TestProductionExample runs examples/production against a redis server of
// its own: a miss, a hit, a POST and a request with Authorization, each
// with its X-Cache and Cache-Status; two
// scrapes of /metrics around a hit; then redis is killed, the app keeps
// answering, and the outage is in its log, written with Echo's and
// echocache's default settings, while go-redis's own lines stay few.
func TestProductionExample(t *testing.T) {
	bins := build(t)
	redis := servertest.StartRedis(t)
	cacheURL := withPrefix(t, "redis://"+redis.Addr()+"/0", namespace("production"))
	base, logs := startLogged(t, bins, "production", cacheURL)

	for _, st := range []productionStep{
		{name: "miss", method: http.MethodGet, xCache: "MISS", cacheStatus: storedMiss},
		// The hit's ttl is the page's remaining freshness: 60s or a little less.
		{name: "hit", method: http.MethodGet, xCache: "HIT", cacheStatus: regexp.MustCompile(`^echocache; hit; ttl=(60|5\d)$`)},
		{name: "post", method: http.MethodPost, cacheStatus: regexp.MustCompile(`^echocache; fwd=method; detail=method$`)},
		{name: "authorization", method: http.MethodGet, header: []string{"Authorization", "Bearer token"},
			cacheStatus: regexp.MustCompile(`^echocache; fwd=bypass; detail=authorization$`)},
		{name: "miss after the post", method: http.MethodGet, xCache: "MISS", cacheStatus: storedMiss},
	} {
		resp := do(t, st.method, base+"/", st.header...)
		if got := resp.header.Get("X-Cache"); got != st.xCache {
			t.Errorf("%s: %s / X-Cache = %q; want %q", st.name, st.method, got, st.xCache)
		}
		if got := strings.Join(resp.header.Values("Cache-Status"), ", "); !st.cacheStatus.MatchString(got) {
			t.Errorf("%s: %s / Cache-Status = %q; want a match of %s", st.name, st.method, got, st.cacheStatus)
		}
	}

	before := pageHits(t, base)
	if got := do(t, http.MethodGet, base+"/").header.Get("X-Cache"); got != "HIT" {
		t.Fatalf("GET / = %s; want a hit", got)
	}
	if after := pageHits(t, base); after != before+1 {
		t.Errorf("page hits on /metrics went from %d to %d over one hit; want +1", before, after)
	}

	redis.Kill()
	killed := time.Now()
	// The app answers every request, uncached, until the log shows the
	// breaker opening (5 failures in a row by default).
	deadline := killed.Add(30 * time.Second)
	for !strings.Contains(logs.String(), "store failed 5 times in a row") {
		if time.Now().After(deadline) {
			t.Fatalf("no line about the circuit breaker in the log 30s after redis was killed:\n%s", logs.String())
		}
		resp := do(t, http.MethodGet, base+"/")
		if got := resp.header.Get("X-Cache"); got != "MISS" {
			t.Errorf("GET / with redis down: X-Cache = %q; want MISS (served uncached)", got)
		}
		if got := resp.header.Get("Cache-Status"); !storeDown.MatchString(got) {
			t.Errorf("GET / with redis down: Cache-Status = %q; want a match of %s", got, storeDown)
		}
	}
	// While the breaker is open, Cache-Status says the store was skipped
	// (each failed probe opens it again).
	for {
		got := do(t, http.MethodGet, base+"/").header.Get("Cache-Status")
		if got == "echocache; fwd=miss; detail=store-unavailable" {
			break
		}
		if !storeDown.MatchString(got) {
			t.Errorf("GET / with redis down: Cache-Status = %q; want a match of %s", got, storeDown)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Cache-Status with detail=store-unavailable 30s after redis was killed; last %q", got)
		}
	}
	out := logs.String()
	for _, want := range []string{
		`"level":"WARN","msg":"echocache: store error (serving uncached): `,
		`"level":"WARN","msg":"echocache: store failed 5 times in a row; skipping it, probing it every 200ms: `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// Without the rate limit, go-redis logs a line per failed dial: one
	// per store call until the breaker opens, and one per probe after.
	if n, most := goRedisDialLines(logs), 1+int(time.Since(killed)/(10*time.Second)); n > most {
		t.Errorf("go-redis logged %d failed dials; want at most %d (one line per 10s):\n%s", n, most, out)
	}
}

// The Cache-Status of a miss stored for the page's minute, and of a
// request served uncached because the store failed or the breaker skipped
// it.
var (
	storedMiss = regexp.MustCompile(`^echocache; fwd=uri-miss; ttl=60; stored$`)
	storeDown  = regexp.MustCompile(`^echocache; fwd=miss; detail=store-(error|unavailable)$`)
)

// goRedisDialLines counts go-redis's own lines about failed dials.
func goRedisDialLines(logs *syncbuf.Buffer) int {
	n := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.HasPrefix(line, "redis: ") && strings.Contains(line, "failed to dial") {
			n++
		}
	}
	return n
}

var pageHitsLine = regexp.MustCompile(`(?m)^echocache_lookups_total\{feature="page",result="hit"\} (\d+)$`)

// pageHits scrapes /metrics and returns the page hit counter.
func pageHits(t *testing.T, base string) int {
	t.Helper()
	resp := do(t, http.MethodGet, base+"/metrics")
	m := pageHitsLine.FindStringSubmatch(resp.body)
	if m == nil {
		t.Fatalf("/metrics has no page hit counter:\n%s", resp.body)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}
