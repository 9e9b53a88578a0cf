// Package integration runs every example as a real process against real
// redis and memcached servers (and a shared file store directory) and
// checks its behaviour through HTTP.
package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/internal/syncbuf"
	"github.com/echocache/echocache/stores"
)

// examples are the example commands, by directory name under examples/.
var examples = []string{
	"app", "cached-app", "cached-function-app", "modular-views",
	"cached-blueprint-app", "method-view", "template-blocks", "memoize-app",
	"arbitrary-objects", "clear-cache", "echo-v5", "production",
}

// backend is a store server the examples run against.
type backend struct {
	name string
	url  func(t *testing.T) string // a URL of the server, without prefix
}

var backends = []backend{
	{"redis", func(t *testing.T) string { return servertest.Redis(t) }},
	{"memcached", func(t *testing.T) string { return "memcached://" + servertest.Memcached(t) }},
	{"memcached-auth", func(t *testing.T) string { return servertest.MemcachedAuth(t) }},
	{"memcached-sasl", func(t *testing.T) string { return servertest.MemcachedSASL(t) }},
	{"memcached-pool", func(t *testing.T) string { return "memcached://" + strings.Join(servertest.MemcachedPool(t), ",") }},
	// A directory that the processes share, as processes on one host can.
	{"file", func(t *testing.T) string { return "file://" + filepath.ToSlash(t.TempDir()) }},
}

// An exampleCheck tells what the pages of an example that serves HTTP must
// do.
type exampleCheck struct {
	// check drives the example's pages and checks their caching.
	check func(t *testing.T, base string)
	// cached returns a cached part of a page. A second process of the
	// example on the same store must return the first one's: they share
	// the backend, not just a memory cache.
	cached func(t *testing.T, base string) string
}

// cachedApp checks the walkthrough's cached view: a time, stored by the
// first GET, served again as a hit.
var cachedApp = exampleCheck{
	check: func(t *testing.T, base string) {
		first := get(t, base+"/")
		if got := first.header.Get("X-Cache"); got != "MISS" {
			t.Errorf("first GET / X-Cache = %q; want MISS", got)
		}
		isTime(t, first.body)
		again := get(t, base+"/")
		if again.body != first.body || again.header.Get("X-Cache") != "HIT" {
			t.Errorf("GET / again = %q (X-Cache %q); want the cached %q (HIT)", again.body, again.header.Get("X-Cache"), first.body)
		}
	},
	cached: body("/"),
}

var checks = map[string]exampleCheck{
	"cached-app": cachedApp,
	"echo-v5":    cachedApp, // the same step on Echo v5
	"cached-function-app": {
		check: func(t *testing.T, base string) {
			cached := cachedTime(t, base)
			isTime(t, cached)
			for range 2 {
				if got := cachedTime(t, base); got != cached {
					t.Errorf("cached time = %q; want %q", got, cached)
				}
			}
		},
		cached: cachedTime,
	},
	"modular-views":        {check: func(t *testing.T, base string) { repeats(t, base, "/") }, cached: body("/")},
	"cached-blueprint-app": {check: func(t *testing.T, base string) { repeats(t, base, "/") }, cached: body("/")},
	"method-view": {
		check: func(t *testing.T, base string) {
			if root, view := repeats(t, base, "/"), repeats(t, base, "/view"); root == view {
				t.Errorf("GET / and GET /view share one entry: %q", root)
			}
			if a, b := post(t, base+"/view"), post(t, base+"/view"); a == b {
				t.Errorf("POST /view = %q twice; want POST never cached", a)
			}
		},
		cached: body("/view"),
	},
	"template-blocks": {
		check: func(t *testing.T, base string) {
			for _, path := range []string{"/", "/percent"} {
				first := get(t, base+path).body
				again := get(t, base+path).body
				p1 := between(t, first, "<strong>", "</strong>")
				if p2 := between(t, again, "<strong>", "</strong>"); p2 != p1 {
					t.Errorf("GET %s: cached proverb = %q; want %q", path, p2, p1)
				}
				t1 := between(t, first, "Rendered at ", "</p>")
				isTime(t, t1)
				if t2 := between(t, again, "Rendered at ", "</p>"); t2 == t1 {
					t.Errorf("GET %s: time outside the block = %q twice; want it fresh", path, t1)
				}
			}
		},
		cached: func(t *testing.T, base string) string {
			return between(t, get(t, base+"/").body, "<strong>", "</strong>")
		},
	},
	"memoize-app": {
		check: func(t *testing.T, base string) {
			alice := repeats(t, base, "/alice")
			bob := repeats(t, base, "/bob")
			if !strings.HasPrefix(alice, "alice - ") || !strings.HasPrefix(bob, "bob - ") {
				t.Errorf("GET /alice, /bob = %q, %q; want \"name - time\"", alice, bob)
			}
			isTime(t, strings.TrimPrefix(alice, "alice - "))
		},
		cached: body("/alice"),
	},
	"arbitrary-objects": {
		check: func(t *testing.T, base string) {
			for _, path := range []string{"/context", "/package", "/get-or-set"} {
				repeats(t, base, path)
			}
		},
		cached: body("/context"),
	},
}

// TestExamples builds every example once, then runs each one that serves
// HTTP against every backend, on a free port, and checks its pages.
func TestExamples(t *testing.T) {
	bins := build(t)

	t.Run("app", func(t *testing.T) {
		// The first step has no cache, so no backend: every GET is fresh.
		t.Parallel()
		base := start(t, bins, "app", "")
		a, b := get(t, base+"/").body, get(t, base+"/").body
		isTime(t, a)
		if a == b {
			t.Errorf("GET / = %q twice; want a fresh time each time", a)
		}
	})
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			server := be.url(t)
			for _, name := range examples {
				check, ok := checks[name]
				if !ok {
					continue
				}
				t.Run(name, func(t *testing.T) {
					cacheURL := withPrefix(t, server, namespace(name))
					first := start(t, bins, name, cacheURL)
					check.check(t, first)

					second := start(t, bins, name, cacheURL)
					if a, b := check.cached(t, first), check.cached(t, second); a != b {
						t.Errorf("two processes on one store disagree on a cached part: %q and %q", a, b)
					}
				})
			}
			t.Run("clear-cache", func(t *testing.T) { testClearCache(t, bins, server) })
		})
	}
}

// testClearCache runs cached-app, plants a key in another namespace of the
// same server, runs clear-cache on the app's namespace, and checks that the
// app's page is gone and the planted key is not.
func testClearCache(t *testing.T, bins, server string) {
	appURL := withPrefix(t, server, namespace("app"))
	otherURL := withPrefix(t, server, namespace("other"))

	base := start(t, bins, "cached-app", appURL)
	page := repeats(t, base, "/")

	other, err := stores.Open(t.Context(), otherURL)
	if err != nil {
		t.Fatalf("stores.Open(%s): %v", otherURL, err)
	}
	defer other.Close()
	if err := other.Set(t.Context(), "planted", []byte("survives"), time.Hour); err != nil {
		t.Fatalf("planting a key in %s: %v", otherURL, err)
	}

	out, err := run(t, bins, "clear-cache", appURL)
	if err != nil {
		t.Fatalf("clear-cache: %v\n%s", err, out)
	}
	if !strings.Contains(out, "cleared namespace") {
		t.Errorf("clear-cache printed %q; want it to say what it cleared", out)
	}

	if got := get(t, base+"/").body; got == page {
		t.Errorf("after clear-cache, GET / = the cached %q; want a fresh page", page)
	}
	if v, err := other.Get(t.Context(), "planted"); err != nil || string(v) != "survives" {
		t.Errorf("after clear-cache, the other namespace's key = %q, %v; want it kept", v, err)
	}
}

// badPassword is the wrong password of TestBadCacheURL's URLs.
const badPassword = "Wr0ng-pa55word"

// wrongPassword returns rawURL with its password replaced by badPassword.
func wrongPassword(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		t.Fatalf("store URL %q has no user", rawURL)
	}
	u.User = url.UserPassword(u.User.Username(), badPassword)
	return u.String()
}

// TestBadCacheURL checks that an example refuses to start on a bad
// CACHE_URL, with status 1 and one line naming the problem.
func TestBadCacheURL(t *testing.T) {
	bins := build(t)
	dead := deadAddr(t)
	tests := []struct {
		name, example, url, want string
	}{
		{"nok, unknown scheme", "cached-app", "bogus://x", `unknown store scheme "bogus"`},
		{"nok, unknown parameter", "memoize-app", "memory://?max_byts=1", `unknown parameter "max_byts"`},
		{"nok, bad value", "template-blocks", "redis://127.0.0.1:6379/zero", `path "/zero"`},
		{"nok, server down", "cached-function-app", "redis://" + dead + "/0", "does not answer"},
		{"nok, memcached down", "clear-cache", "memcached://" + dead, "does not answer"},
		{"nok, memcached -Y password", "cached-app", wrongPassword(t, servertest.MemcachedAuth(t)), "authentication failed"},
		{"nok, saslmemcached password", "memoize-app", wrongPassword(t, servertest.MemcachedSASL(t)), "authentication failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), filepath.Join(bins, tt.example))
			cmd.Env = append(os.Environ(), "CACHE_URL="+tt.url, "ADDR="+deadAddr(t))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("%s with CACHE_URL=%s: %v; want exit status 1\nstderr: %s", tt.example, tt.url, err, stderr.String())
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, tt.example+": CACHE_URL ") || !strings.Contains(msg, tt.want) {
				t.Errorf("%s stderr = %q; want one line %q... naming %q", tt.example, msg, tt.example+": CACHE_URL ", tt.want)
			}
			if strings.Contains(msg, badPassword) {
				t.Errorf("%s stderr = %q shows the password", tt.example, msg)
			}
		})
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildOut  []byte
	buildErr  error
)

// build compiles every example into one directory, once per test binary,
// with one go build (which compiles them in parallel), and returns it.
func build(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs every example; skipped in -short mode")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "echocache-examples-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", buildDir + string(filepath.Separator)}
		for _, name := range examples {
			args = append(args, "./examples/"+name)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = ".."
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build of the examples: %v\n%s", buildErr, buildOut)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// start runs the example name with CACHE_URL=cacheURL (unless empty) on a
// free port, waits until it listens and returns its base URL. The process
// is stopped with SIGTERM when the test ends, and must exit cleanly.
func start(t *testing.T, bins, name, cacheURL string) string {
	t.Helper()
	base, _ := startLogged(t, bins, name, cacheURL)
	return base
}

// startLogged is start, and returns what the example writes to stdout and
// stderr as well.
func startLogged(t *testing.T, bins, name, cacheURL string) (string, *syncbuf.Buffer) {
	t.Helper()
	var lastErr error
	for range 3 { // a free port can be taken before the example binds it
		port, err := servertest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(filepath.Join(bins, name))
		cmd.Env = append(os.Environ(), "ADDR="+addr)
		if cacheURL != "" {
			cmd.Env = append(cmd.Env, "CACHE_URL="+cacheURL)
		}
		servertest.KillWithParent(cmd)
		var stderr syncbuf.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := waitListening(addr, &stderr, exited); err != nil {
			_ = cmd.Process.Kill()
			lastErr = fmt.Errorf("%s: %v\n%s", name, err, stderr.String())
			continue
		}
		t.Cleanup(func() { stop(t, name, cmd, exited, &stderr) })
		return "http://" + addr, &stderr
	}
	t.Fatal(lastErr)
	return "", nil
}

// stop sends SIGTERM and expects a clean exit within ten seconds.
func stop(t *testing.T, name string, cmd *exec.Cmd, exited <-chan error, out *syncbuf.Buffer) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM; want a clean exit\n%s", name, err, out.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Errorf("%s did not exit within 10s of SIGTERM", name)
	}
}

// run runs the example name to completion with CACHE_URL=cacheURL and
// returns its output.
func run(t *testing.T, bins, name, cacheURL string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bins, name))
	cmd.Env = append(os.Environ(), "CACHE_URL="+cacheURL)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitListening waits until the process says, on out, that it listens on
// addr (demo's "NAME: listening on http://ADDR"), exits, or ten seconds
// pass. A connection to addr alone would not do: another process may
// hold the port for a moment before the example fails to bind it.
func waitListening(addr string, out *syncbuf.Buffer, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited before listening: %v", err)
		default:
		}
		if strings.Contains(out.String(), "listening on http://"+addr) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("not listening after 10s")
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	port, err := servertest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// namespace returns a prefix no other test uses, so tests sharing a
// server never see each other's keys.
func namespace(name string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "itest-" + name + "-" + hex.EncodeToString(b) + ":"
}

// withPrefix adds prefix=ns to a store URL.
func withPrefix(t *testing.T, rawURL, ns string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("store URL %q: %v", rawURL, err)
	}
	q := u.Query()
	q.Set("prefix", ns)
	u.RawQuery = q.Encode()
	return u.String()
}

var client = &http.Client{Timeout: 10 * time.Second}

type response struct {
	header http.Header
	body   string
}

func get(t *testing.T, target string) response {
	t.Helper()
	return do(t, http.MethodGet, target)
}

func post(t *testing.T, target string) string {
	t.Helper()
	return do(t, http.MethodPost, target).body
}

// do sends a request with the given headers (name, value, ...) and
// expects 200.
func do(t *testing.T, method, target string, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Page keys include the host. Processes of one app behind a load
	// balancer see one host, not each its own port.
	req.Host = "app.example"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, target, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s = %d %q; want 200", method, target, resp.StatusCode, body)
	}
	return response{resp.Header, string(body)}
}

// repeats checks that GET path returns the same body three times, and
// returns it.
func repeats(t *testing.T, base, path string) string {
	t.Helper()
	first := get(t, base+path).body
	for range 2 {
		if got := get(t, base+path).body; got != first {
			t.Errorf("GET %s = %q; want the cached %q", path, got, first)
		}
	}
	return first
}

// body returns a function that returns the body of GET path.
func body(path string) func(t *testing.T, base string) string {
	return func(t *testing.T, base string) string { return get(t, base+path).body }
}

func cachedTime(t *testing.T, base string) string {
	return between(t, get(t, base+"/").body, "It is cached:</strong> ", "</li>")
}

func isTime(t *testing.T, s string) {
	t.Helper()
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		t.Errorf("%q is not an RFC 3339 time: %v", s, err)
	}
}

func between(t *testing.T, s, start, end string) string {
	t.Helper()
	_, after, ok := strings.Cut(s, start)
	if !ok {
		t.Fatalf("%q not found in:\n%s", start, s)
	}
	inner, _, ok := strings.Cut(after, end)
	if !ok {
		t.Fatalf("%q not found after %q in:\n%s", end, start, s)
	}
	return inner
}
