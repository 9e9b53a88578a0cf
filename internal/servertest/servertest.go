// Package servertest gives tests a real redis-server and memcached on
// loopback. It uses the servers named by ECHOCACHE_REDIS_URL,
// ECHOCACHE_MEMCACHED_ADDR and ECHOCACHE_MEMCACHED_AUTH_URL when they are
// set (make test sets them), and otherwise starts its own servers from the
// binaries on PATH, once per test binary, on free ports.
//
// When a server is neither configured nor installed, the test is skipped
// with a message naming it; with CI=true it fails instead, so no store test
// is ever silently skipped in CI.
package servertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Credentials of the authenticated memcached this package starts.
const (
	AuthUser = "echocache"
	AuthPass = "s3cret-pass"
)

type server struct {
	once sync.Once
	addr string
	err  error
}

var redisSrv, mcSrv, mcAuthSrv server

// Redis returns a redis:// URL of a real redis-server (database 0).
func Redis(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv("ECHOCACHE_REDIS_URL"); u != "" {
		return u
	}
	redisSrv.once.Do(func() {
		redisSrv.addr, redisSrv.err = start("redis-server", func(port int, dir string) []string {
			return []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}
		})
	})
	need(tb, "redis-server", "ECHOCACHE_REDIS_URL", redisSrv.err)
	return "redis://" + redisSrv.addr + "/0"
}

// Memcached returns the host:port of a real memcached without authentication.
func Memcached(tb testing.TB) string {
	tb.Helper()
	if a := os.Getenv("ECHOCACHE_MEMCACHED_ADDR"); a != "" {
		return a
	}
	mcSrv.once.Do(func() {
		mcSrv.addr, mcSrv.err = start("memcached", func(port int, dir string) []string {
			return memcachedArgs(port)
		})
	})
	need(tb, "memcached", "ECHOCACHE_MEMCACHED_ADDR", mcSrv.err)
	return mcSrv.addr
}

// MemcachedAuth returns a memcached://user:pass@host:port URL of a real
// memcached started with ASCII authentication (-Y).
func MemcachedAuth(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv("ECHOCACHE_MEMCACHED_AUTH_URL"); u != "" {
		return u
	}
	mcAuthSrv.once.Do(func() {
		mcAuthSrv.addr, mcAuthSrv.err = start("memcached", func(port int, dir string) []string {
			authfile := filepath.Join(dir, "authfile")
			if err := os.WriteFile(authfile, []byte(AuthUser+":"+AuthPass+"\n"), 0o600); err != nil {
				panic(err)
			}
			return append(memcachedArgs(port), "-Y", authfile)
		})
	})
	need(tb, "memcached", "ECHOCACHE_MEMCACHED_AUTH_URL", mcAuthSrv.err)
	return "memcached://" + AuthUser + ":" + AuthPass + "@" + mcAuthSrv.addr
}

func memcachedArgs(port int) []string {
	args := []string{"-l", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "0", "-m", "256"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	return args
}

func need(tb testing.TB, bin, env string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s is needed: install it (make test does) or set %s: %v", bin, env, err)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// start runs bin on a free loopback port and waits until it accepts
// connections. The server is killed when the test process exits.
func start(bin string, args func(port int, dir string) []string) (string, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("%s not found on PATH", bin)
	}
	dir, err := os.MkdirTemp("", "echocache-"+bin+"-")
	if err != nil {
		return "", err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return "", err
		}
		cmd := exec.Command(path, args(port, dir)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return "", fmt.Errorf("start %s: %w", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitListening(addr, exited); err != nil {
			_ = cmd.Process.Kill()
			lastErr = fmt.Errorf("%s on %s: %w", bin, addr, err)
			continue // the port may have been taken in between; try another
		}
		return addr, nil
	}
	return "", lastErr
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening polls addr until it accepts a connection, the process exits
// or ten seconds pass.
func waitListening(addr string, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("server exited: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not listening after 10s")
}
