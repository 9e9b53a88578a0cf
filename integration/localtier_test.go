package integration

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echocache/echocache/internal/servertest"
)

// localTierBound is how soon an invalidation made in one process must be
// seen by the others' local tiers, at the 99th percentile.
const localTierBound = 100 * time.Millisecond

// TestLocalTierProcesses starts three processes (integration/internal/
// tierpeer) on one redis namespace, each with a local tier, and has each
// in turn change a value, a memoized result and a cached, tagged page in
// every way an application can (overwrite, Delete, Forget, ForgetAll,
// DeletePage, InvalidateTag, Clear) while the other two watch: each must
// see the change, and the 99th percentile of the delay is within
// localTierBound. Each watcher's read just before it sees each change is
// answered by its local tier (the process says so per read), so that the
// delay measured is the invalidation's, not a read of the shared store.
func TestLocalTierProcesses(t *testing.T) {
	bin := buildTierPeer(t)
	forms := []struct {
		name   string
		url    func(t *testing.T) string
		rounds int
	}{
		{"redis", func(t *testing.T) string { return servertest.Redis(t) }, 6},
		{"cluster", func(t *testing.T) string {
			return "redis+cluster://" + strings.Join(servertest.RedisClusterAddrs(t), ",") + "/"
		}, 3},
		{"sentinel", func(t *testing.T) string {
			addrs, master := servertest.RedisSentinelAddrs(t)
			return "redis+sentinel://" + strings.Join(addrs, ",") + "/" + master
		}, 3},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			u, err := url.Parse(f.url(t))
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("prefix", namespace("tier"))
			q.Set("local", "8MiB")
			u.RawQuery = q.Encode()
			var procs []string
			for range 3 {
				procs = append(procs, start(t, bin, "tierpeer", u.String()))
			}
			ops := []struct{ do, what string }{
				{"set", "value"}, {"delete", "value"}, {"clear", "value"},
				{"forget", "memo"}, {"forgetall", "memo"},
				{"deletepage", "page"}, {"tag", "page"},
			}
			var delays []time.Duration
			for round := range f.rounds {
				writer := procs[round%3]
				var watchers []string
				for i, p := range procs {
					if i != round%3 {
						watchers = append(watchers, p)
					}
				}
				for _, op := range ops {
					if op.what == "value" {
						httpPost(t, writer+"/op?do=set") // something to change
					}
					delays = append(delays, watchChange(t, writer, watchers, op.do, op.what)...)
				}
			}
			slices.Sort(delays)
			p50, p99 := delays[len(delays)/2], delays[(len(delays)*99+99)/100-1]
			t.Logf("%d invalidations seen by another process: p50 %v, p99 %v, max %v", len(delays), p50, p99, delays[len(delays)-1])
			if p99 > localTierBound {
				t.Errorf("p99 delay of an invalidation = %v; want at most %v", p99, localTierBound)
			}
			for _, p := range procs {
				var hits, misses int
				fmt.Sscan(httpGet(t, p+"/stats"), &hits, &misses)
				if hits == 0 {
					t.Errorf("%s: no read served by the local tier (%d misses)", p, misses)
				}
			}
		})
	}
}

// watchChange has the watchers read what until each holds a copy, starts
// a watch on each, makes the writer do the change, and returns how long
// after the writer's call returned each watcher saw it (zero when it saw
// it before the writer's answer arrived).
func watchChange(t *testing.T, writer string, watchers []string, do, what string) []time.Duration {
	t.Helper()
	// Settle: every watcher holds a copy, and every process's work in the
	// background has ended (the pages watchers computed on a miss are
	// written after their responses, and the last write wins; DeletePage
	// deletes again 2×StoreTimeout later), so that nothing but the change
	// alters what the watchers read.
	procs := append([]string{writer}, watchers...)
	olds := make([]string, len(watchers))
	deadline := time.Now().Add(10 * time.Second)
	for settled := false; !settled; {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not settle, or is never answered by the local tiers", what)
		}
		for i, w := range watchers {
			// The first read fills the copy; the second must agree and
			// be answered from it.
			for {
				a, _ := readWhat(t, w, what)
				if b, local := readWhat(t, w, what); a == b && local {
					olds[i] = a
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s does not settle, or is never answered by the local tier", w, what)
				}
			}
		}
		for _, p := range procs {
			httpPost(t, p+"/flush")
		}
		settled = true
		for i, w := range watchers {
			if v, _ := readWhat(t, w, what); v != olds[i] {
				settled = false
			}
		}
	}
	type stream struct {
		body io.ReadCloser
		r    *bufio.Reader
	}
	streams := make([]stream, len(watchers))
	for i, w := range watchers {
		resp, err := client.Get(w + "/watch?what=" + what + "&old=" + url.QueryEscape(olds[i]))
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = stream{resp.Body, bufio.NewReader(resp.Body)}
		if line, err := streams[i].r.ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("%s/watch: %q, %v; want ready (the read before the change answered by the local tier, with the value just read)", w, line, err)
		}
	}
	done, err := strconv.ParseInt(httpPost(t, writer+"/op?do="+do), 10, 64)
	if err != nil {
		t.Fatalf("%s/op?do=%s: %v", writer, do, err)
	}
	out := make([]time.Duration, len(watchers))
	var wg sync.WaitGroup
	errs := make([]error, len(watchers))
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.body.Close()
			line, err := s.r.ReadString('\n')
			at, how, _ := strings.Cut(strings.TrimSpace(line), " ")
			seen, perr := strconv.ParseInt(at, 10, 64)
			if err != nil || perr != nil {
				errs[i] = fmt.Errorf("%s: %s of %s not seen: %q, %v", watchers[i], do, what, line, err)
				return
			}
			if how != "local" {
				errs[i] = fmt.Errorf("%s: %s of %s seen by a read after one the local tier did not answer (%q): the delay is not the invalidation's", watchers[i], do, what, line)
				return
			}
			out[i] = max(0, time.Duration(seen-done))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// readWhat reads what from the process at base, and whether its local
// tier answered every store read of it.
func readWhat(t *testing.T, base, what string) (v string, local bool) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/read?what="+what, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/read?what=%s: %d %q, %v", base, what, resp.StatusCode, b, err)
	}
	return string(b), resp.Header.Get("X-Local-Tier") == "local"
}

func httpGet(t *testing.T, target string) string {
	t.Helper()
	return httpDo(t, http.MethodGet, target)
}

func httpPost(t *testing.T, target string) string {
	t.Helper()
	return httpDo(t, http.MethodPost, target)
}

func httpDo(t *testing.T, method, target string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %q, %v", method, target, resp.StatusCode, b, err)
	}
	return string(b)
}

// buildTierPeer builds integration/internal/tierpeer into a directory of
// its own and returns that directory.
func buildTierPeer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs processes; skipped in -short mode")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "tierpeer"), "./integration/internal/tierpeer")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build tierpeer: %v\n%s", err, out)
	}
	return dir
}
