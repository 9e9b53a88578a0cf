package mcbin

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echocache/echocache/internal/servertest"
)

// The servers of these tests. The plain memcached is servertest's shared
// one. The SASL one is named by ECHOCACHE_MEMCACHED_SASL_URL
// (saslmemcached://user:pass@host:port) when set, and otherwise started
// here once per test binary; servers a test kills are its own. The
// functions below have the shape of servertest's (MemcachedSASL,
// StartMemcached, StartMemcachedSASL and their Server), so that they can
// be replaced by it.

// plainAddr returns the host:port of a shared memcached without
// authentication.
func plainAddr(t testing.TB) string { return servertest.Memcached(t) }

// Credentials of the SASL servers started here. The user carries an
// explicit realm so that login does not depend on the host name, which is
// memcached's default SASL realm.
const (
	saslUser = "echocache@memcached.realm"
	saslPass = "s3cret-sasl-pass"
)

var (
	saslOnce   sync.Once
	saslShared *testServer
	saslURL    string
	saslErr    error
)

// TestMain stops the shared SASL server, if one was started, when the tests
// end.
func TestMain(m *testing.M) {
	code := m.Run()
	if saslShared != nil {
		saslShared.Close()
	}
	os.Exit(code)
}

// memcachedSASL returns a saslmemcached://user:pass@host:port URL of a
// shared memcached with SASL authentication (-S).
func memcachedSASL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("ECHOCACHE_MEMCACHED_SASL_URL"); u != "" {
		return u
	}
	saslOnce.Do(func() {
		if saslShared, saslErr = newSASLServer("plain"); saslErr == nil {
			saslURL = "saslmemcached://" + url.UserPassword(saslUser, saslPass).String() + "@" + saslShared.Addr()
		}
	})
	need(t, "memcached -S", saslErr)
	return saslURL
}

// saslConfig returns a Config for the server and credentials of a
// saslmemcached:// URL.
func saslConfig(t testing.TB, rawURL string) Config {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil || u.Host == "" {
		t.Fatalf("SASL memcached URL is not scheme://user:password@host:port")
	}
	pass, _ := u.User.Password()
	return Config{Addr: u.Host, Username: u.User.Username(), Password: pass}
}

// need skips the test when a server could not be started, or fails it
// under CI, where nothing may be skipped.
func need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s is needed (Debian packages memcached, sasl2-bin, libsasl2-modules; make test installs them): %v", what, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// startMemcached starts a memcached of the test's own, killed when the
// test ends.
func startMemcached(t testing.TB, extra ...string) *testServer {
	t.Helper()
	s, err := newServer("", nil, extra...)
	need(t, "memcached", err)
	t.Cleanup(s.Close)
	return s
}

// startMemcachedSASL starts a memcached -S of the test's own, with user
// saslUser and password saslPass and the SASL mechanisms mechs ("plain"
// when none are given), killed when the test ends.
func startMemcachedSASL(t testing.TB, mechs ...string) *testServer {
	t.Helper()
	if len(mechs) == 0 {
		mechs = []string{"plain"}
	}
	s, err := newSASLServer(strings.Join(mechs, " "))
	need(t, "memcached -S", err)
	t.Cleanup(s.Close)
	return s
}

// newSASLServer creates a SASL database with one user and starts memcached
// -S on it, offering the mechanisms mechs ("plain"). SASL_CONF_PATH names the directory that holds memcached.conf
// (memcached sasl_defs.c); pointing it at the file silently falls back to
// the system's mechanisms.
func newSASLServer(mechs string) (*testServer, error) {
	bin, err := exec.LookPath("saslpasswd2")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/saslpasswd2"); err != nil {
			return nil, fmt.Errorf("saslpasswd2 not found (Debian package sasl2-bin)")
		}
	}
	dir, err := os.MkdirTemp("", "mcbin-sasl-")
	if err != nil {
		return nil, err
	}
	db := filepath.Join(dir, "sasldb")
	conf := "mech_list: " + mechs + "\nsasldb_path: " + db + "\n"
	if err := os.WriteFile(filepath.Join(dir, "memcached.conf"), []byte(conf), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	user, realm, _ := strings.Cut(saslUser, "@")
	cmd := exec.Command(bin, "-p", "-a", "memcached", "-c", "-f", db, "-u", realm, user)
	cmd.Stdin = strings.NewReader(saslPass) // -p: all of stdin, no newline
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("saslpasswd2: %v: %s", err, out)
	}
	s, err := newServer(dir, []string{"SASL_CONF_PATH=" + dir}, "-S")
	if err != nil {
		os.RemoveAll(dir)
	}
	return s, err
}

// testServer is a memcached started here, which a test may kill and
// restart on the same port.
type testServer struct {
	addr string
	dir  string // removed by Close
	env  []string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// newServer starts memcached with extra arguments on a free port; dir, if
// not empty, holds its files.
func newServer(dir string, env []string, extra ...string) (*testServer, error) {
	if _, err := exec.LookPath("memcached"); err != nil {
		return nil, fmt.Errorf("memcached not found on PATH")
	}
	var lastErr error
	for range 5 {
		port, err := servertest.FreePort()
		if err != nil {
			return nil, err
		}
		s := &testServer{addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, env: env}
		s.args = append([]string{"-l", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "0", "-m", "64"}, extra...)
		if os.Geteuid() == 0 {
			s.args = append(s.args, "-u", "root") // memcached refuses root without -u
		}
		if lastErr = s.Restart(); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

// Addr returns the server's "127.0.0.1:port".
func (s *testServer) Addr() string { return s.addr }

// Restart starts the server (again) on its port, empty, and returns once
// it accepts connections.
func (s *testServer) Restart() error {
	cmd := exec.Command("memcached", s.args...)
	cmd.Env = append(os.Environ(), s.env...)
	servertest.KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("memcached %v exited at start", s.args)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("memcached on %s not listening after 10s", s.addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

// Kill stops the server with SIGKILL, as a crash does, and waits until it
// has exited.
func (s *testServer) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Close kills the server and removes its files.
func (s *testServer) Close() {
	s.Kill()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}
