//go:build unix

package main

import (
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echocache/echocache/internal/servertest"
)

// The test binary is the launcher too: run with runAsMain=1 it runs main.
const runAsMain = "WITHSERVERS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsMain) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// vars are the variables the launcher must set.
var vars = []string{
	servertest.EnvRedisURL, servertest.EnvRedisClusterAddrs,
	servertest.EnvRedisSentinelAddrs, servertest.EnvRedisSentinelMaster,
	servertest.EnvMemcachedAddr, servertest.EnvMemcachedPool,
	servertest.EnvMemcachedAuthURL, servertest.EnvMemcachedSASLURL,
}

// launcher returns the launcher running script with sh, and a directory
// for the script's files ($TEST_DIR): the script's environment is written
// to env in it first.
func launcher(t *testing.T, script string) (cmd *exec.Cmd, dir string) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("redis-server is not installed (make test installs it)")
	}
	dir = t.TempDir()
	cmd = exec.Command(os.Args[0], "sh", "-c", `env > "$TEST_DIR/env.tmp" && mv "$TEST_DIR/env.tmp" "$TEST_DIR/env" && `+script)
	// TMPDIR: the servers' directory goes away with the test's, even when
	// the launcher is killed before it can remove it.
	cmd.Env = append(os.Environ(), runAsMain+"=1", "TEST_DIR="+dir, "TMPDIR="+dir)
	for _, v := range vars { // the launcher's own, not the ones of make test
		cmd.Env = append(cmd.Env, v+"=")
	}
	cmd.Stderr = os.Stderr
	return cmd, dir
}

// TestRunsCommand checks that the command sees every server and its exit
// status is the launcher's, and that the servers are gone afterwards.
func TestRunsCommand(t *testing.T) {
	t.Parallel()
	cmd, dir := launcher(t, `while [ ! -e "$TEST_DIR/exit" ]; do sleep 0.02; done; exit 3`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := serverAddrs(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "exit"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("launcher of a command exiting 3: %v; want exit status 3", err)
	}
	for _, a := range addrs {
		if answers(a) {
			t.Errorf("%s still listens after the launcher exited", a)
		}
	}
}

// TestSignal checks that SIGTERM reaches the command, and that the
// servers are stopped once it has exited.
func TestSignal(t *testing.T) {
	t.Parallel()
	cmd, dir := launcher(t, "exec sleep 60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := serverAddrs(t, dir)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Fatalf("launcher after SIGTERM: %v; want exit status %d (the command killed by SIGTERM)", err, 128+int(syscall.SIGTERM))
	}
	for _, a := range addrs {
		if answers(a) {
			t.Errorf("%s still listens after the launcher exited", a)
		}
	}
}

// serverAddrs waits for the script's environment in dir, checks that
// every variable is set and every server answers, and returns the
// servers' addresses.
func serverAddrs(t *testing.T, dir string) []string {
	t.Helper()
	envFile := filepath.Join(dir, "env")
	deadline := time.Now().Add(time.Minute)
	var data []byte
	for {
		var err error
		if data, err = os.ReadFile(envFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command did not start within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	env := map[string]string{}
	for line := range strings.Lines(string(data)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		env[k] = v
	}
	var addrs []string
	for _, v := range vars {
		val := env[v]
		if val == "" {
			t.Errorf("%s is not set", v)
			continue
		}
		if v == servertest.EnvRedisSentinelMaster {
			continue
		}
		for a := range strings.SplitSeq(val, ",") {
			if u, err := url.Parse(a); err == nil && u.Host != "" {
				a = u.Host
			}
			if !answers(a) {
				t.Errorf("%s (%s) does not answer", a, v)
			}
			addrs = append(addrs, a)
		}
	}
	return addrs
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
