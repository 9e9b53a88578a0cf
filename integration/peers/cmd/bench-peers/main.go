// Command bench-peers measures echocache and its peers, each system in a
// server process of its own on loopback, with wrk, in interleaved rounds,
// and prints one markdown table. `make bench-peers` runs it under
// scripts/with-servers.sh, which starts redis and memcached.
//
// Usage:
//
//	bench-peers [-rounds 6] [-duration 2s] [-connections 16] [-systems k1,k2] [-cpuprofile dir]
//
// On a machine with two or more CPUs each server runs on CPU 1 with
// GOMAXPROCS=1 and wrk (one thread) on CPU 0, through taskset; redis and
// memcached are not pinned.
//
// With -serve KEY it is one of those servers instead: it serves the page of
// -size bytes, prints "listening URL" and runs until SIGTERM or SIGINT.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/echocache/echocache/integration/peers"
)

func main() {
	var (
		serve       = flag.String("serve", "", "serve the system with this key (server mode)")
		size        = flag.Int("size", 2048, "server mode: page size in bytes")
		prefix      = flag.String("prefix", "", "server mode: key prefix in shared stores")
		rounds      = flag.Int("rounds", 6, "rounds of every system")
		duration    = flag.Duration("duration", 2*time.Second, "length of one wrk run")
		connections = flag.Int("connections", 16, "wrk connections")
		systems     = flag.String("systems", "", "comma-separated system keys (default: all)")
		cpuprofile  = flag.String("cpuprofile", "", "directory for a CPU profile of every server")
	)
	flag.Parse()
	env := peers.Env{RedisURL: os.Getenv("ECHOCACHE_REDIS_URL"), MemcachedAddr: os.Getenv("ECHOCACHE_MEMCACHED_ADDR")}
	var err error
	if *serve != "" {
		env.Prefix = *prefix
		err = runServer(*serve, *size, env, *cpuprofile)
	} else {
		err = runBench(benchConfig{rounds: *rounds, duration: *duration, connections: *connections, systems: *systems, cpuprofile: *cpuprofile, env: env})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-peers:", err)
		os.Exit(1)
	}
}

func runServer(key string, size int, env peers.Env, profile string) error {
	sys, ok := peers.Lookup(key)
	if !ok {
		return fmt.Errorf("no system %q", key)
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	r, err := peers.Start(sys, size, env)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", r.URL)
	<-ctx.Done()
	return r.Close()
}

type benchConfig struct {
	rounds      int
	duration    time.Duration
	connections int
	systems     string
	cpuprofile  string
	env         peers.Env
}

// proc is one server process.
type proc struct {
	sys peers.System
	cmd *exec.Cmd
	url string
}

func runBench(cfg benchConfig) error {
	if cfg.rounds < 1 || cfg.connections < 1 || cfg.duration < time.Second {
		return fmt.Errorf("-rounds %d, -connections %d, -duration %s: want at least 1, 1 and 1s", cfg.rounds, cfg.connections, cfg.duration)
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk is not installed (make bench-peers installs it with apt-get when run as root)")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	systems, err := pick(cfg.systems, cfg.env)
	if err != nil {
		return err
	}
	serverCPU, loadCPU := pinning()
	before, err := peers.LoadAvg()
	if err != nil {
		return err
	}
	start := time.Now()
	var rows []peers.Row
	for _, size := range peers.Sizes {
		r, err := benchSize(cfg, self, wrk, systems, size, serverCPU, loadCPU)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	after, err := peers.LoadAvg()
	if err != nil {
		return err
	}
	fmt.Printf("%s, %d CPUs, %s, wrk %s; %d rounds of %s per system, interleaved; %s\n\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), strings.Join(wrkArgs(cfg.connections, cfg.duration, "URL"), " "), cfg.rounds, cfg.duration, pinNote(serverCPU, loadCPU))
	if err := peers.WriteTable(os.Stdout, rows); err != nil {
		return err
	}
	fmt.Printf("\nLoad average (1, 5, 15 min) before: %s; after: %s. The whole run took %s.\n", before, after, time.Since(start).Round(time.Second))
	return nil
}

// pick returns the systems named in list (all when empty), in the order of
// peers.Systems, and fails when one needs a store that env lacks.
func pick(list string, env peers.Env) ([]peers.System, error) {
	want := map[string]bool{}
	for k := range strings.SplitSeq(list, ",") {
		if k = strings.TrimSpace(k); k != "" {
			if _, ok := peers.Lookup(k); !ok {
				return nil, fmt.Errorf("no system %q", k)
			}
			want[k] = true
		}
	}
	var out []peers.System
	for _, s := range peers.Systems {
		if len(want) > 0 && !want[s.Key] {
			continue
		}
		if !env.Has(s.Store) {
			return nil, fmt.Errorf("%s needs a %s server: set ECHOCACHE_REDIS_URL and ECHOCACHE_MEMCACHED_ADDR (scripts/with-servers.sh does)", s.Key, s.Store)
		}
		out = append(out, s)
	}
	return out, nil
}

// pinning returns the taskset CPU lists for the servers and for wrk, or
// empty strings where taskset or a second CPU is missing.
func pinning() (server, load string) {
	if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
		return "", ""
	}
	return "1", "0"
}

func pinNote(server, load string) string {
	if server == "" {
		return "servers GOMAXPROCS=1, not pinned (no taskset or one CPU)"
	}
	return fmt.Sprintf("servers GOMAXPROCS=1 on CPU %s, wrk on CPU %s (taskset); redis and memcached not pinned", server, load)
}

func pinned(cpu string, name string, args ...string) *exec.Cmd {
	if cpu == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", cpu, name}, args...)...)
}

// wrkArgs are wrk's arguments for one run: one thread, so that wrk keeps
// to its CPU.
func wrkArgs(connections int, d time.Duration, url string) []string {
	return []string{"-t1", fmt.Sprintf("-c%d", connections), "-d" + d.String(), "--latency", url}
}

func benchSize(cfg benchConfig, self, wrk string, systems []peers.System, size int, serverCPU, loadCPU string) ([]peers.Row, error) {
	var procs []*proc
	defer func() {
		for _, p := range procs {
			stopProc(p)
		}
	}()
	for _, sys := range systems {
		p, err := startProc(cfg, self, sys, size, serverCPU)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	for _, p := range procs {
		if _, err := peers.Check(client, p.url, p.sys, peers.Page(size)); err != nil {
			return nil, err
		}
	}
	client.CloseIdleConnections()
	run := func(p *proc, d time.Duration) (peers.Sample, error) {
		cpu0, err := peers.ProcCPU(p.cmd.Process.Pid)
		if err != nil {
			return peers.Sample{}, err
		}
		out, err := pinned(loadCPU, wrk, wrkArgs(cfg.connections, d, p.url+peers.PagePath)...).CombinedOutput()
		if err != nil {
			return peers.Sample{}, fmt.Errorf("wrk against %s: %v\n%s", p.sys.Key, err, out)
		}
		cpu1, err := peers.ProcCPU(p.cmd.Process.Pid)
		if err != nil {
			return peers.Sample{}, err
		}
		s, err := peers.ParseWrk(string(out))
		s.CPU = cpu1 - cpu0
		return s, err
	}
	fmt.Fprintf(os.Stderr, "bench-peers: %s: warm-up\n", peers.SizeName(size))
	for _, p := range procs {
		if _, err := run(p, time.Second); err != nil {
			return nil, err
		}
	}
	rows := make([]peers.Row, len(procs))
	for i, p := range procs {
		rows[i] = peers.Row{System: p.sys, Size: size, Builds: -1}
	}
	for round := range cfg.rounds {
		fmt.Fprintf(os.Stderr, "bench-peers: %s: round %d of %d\n", peers.SizeName(size), round+1, cfg.rounds)
		for i, p := range procs {
			s, err := run(p, cfg.duration)
			if err != nil {
				return nil, err
			}
			rows[i].Samples = append(rows[i].Samples, s)
		}
	}
	// Whether every request under load was a hit: a cache that built the
	// page more than once is noted under the table.
	for i, p := range procs {
		n, err := peers.Runs(client, p.url)
		if err != nil {
			return nil, err
		}
		rows[i].Builds = n
	}
	return rows, nil
}

func startProc(cfg benchConfig, self string, sys peers.System, size int, cpu string) (*proc, error) {
	args := []string{"-serve", sys.Key, "-size", fmt.Sprint(size), "-prefix", fmt.Sprintf("bench-peers-%d-%d-%s:", os.Getpid(), size, sys.Key)}
	if cfg.cpuprofile != "" {
		args = append(args, "-cpuprofile", filepath.Join(cfg.cpuprofile, fmt.Sprintf("%s-%d.pprof", sys.Key, size)))
	}
	cmd := pinned(cpu, self, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{sys: sys, cmd: cmd}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		if u, found := strings.CutPrefix(l, "listening "); ok && found {
			p.url = u
			return p, nil
		}
		stopProc(p)
		return nil, fmt.Errorf("%s server did not start (said %q)", sys.Key, l)
	case <-time.After(30 * time.Second):
		stopProc(p)
		return nil, fmt.Errorf("%s server did not start within 30s", sys.Key)
	}
}

// stopProc ends a server with SIGTERM (with taskset, exec'd in its place,
// the pid is the server's) and waits for it.
func stopProc(p *proc) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
