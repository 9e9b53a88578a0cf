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
	"syscall"
	"testing"
	"time"

	"github.com/echocache/echocache/internal/servertest"
)

// The servers these tests use. The plain memcached is the shared one of
// internal/servertest (make test starts it); the SASL one is
// ECHOCACHE_MEMCACHED_SASL_URL when set (user:pass@host:port, any scheme)
// and otherwise one this test binary starts; servers that a test kills are
// always its own.

// plainAddr returns the host:port of a memcached without authentication.
func plainAddr(t testing.TB) string { return servertest.Memcached(t) }

// saslServer is a memcached -S with one user.
type saslServer struct{ addr, user, pass string }

var (
	saslOnce sync.Once
	saslSrv  saslServer
	saslErr  error
)

// saslUser and saslPass are the credentials of the SASL server this binary
// starts. The user carries an explicit realm so that the test does not
// depend on the host name (memcached's default SASL realm).
const (
	saslUser = "echocache@memcached.realm"
	saslPass = "s3cret-sasl-pass"
)

// sasl returns a real memcached started with SASL (-S) and its credentials.
func sasl(t testing.TB) saslServer {
	t.Helper()
	if u := os.Getenv("ECHOCACHE_MEMCACHED_SASL_URL"); u != "" {
		pu, err := url.Parse(u)
		if err != nil || pu.User == nil {
			t.Fatalf("ECHOCACHE_MEMCACHED_SASL_URL %q is not user:password@host:port", pu.Redacted())
		}
		pass, _ := pu.User.Password()
		return saslServer{addr: pu.Host, user: pu.User.Username(), pass: pass}
	}
	saslOnce.Do(func() {
		var s *memcachedServer
		s, saslErr = startSASL()
		if saslErr == nil {
			saslSrv = saslServer{addr: s.addr, user: saslUser, pass: saslPass}
		}
	})
	need(t, "memcached, sasl2-bin (saslpasswd2) and libsasl2-modules", saslErr)
	return saslSrv
}

// need skips the test when a server could not be started, or fails it
// under CI, where nothing may be skipped.
func need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s needed (apt-get install memcached sasl2-bin libsasl2-modules; make test does): %v", what, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// startSASL creates a SASL database with one user and starts memcached -S
// on it. SASL_CONF_PATH names the directory that holds memcached.conf
// (memcached sasl_defs.c); pointing it at the file silently falls back to
// the system's mechanisms.
func startSASL() (*memcachedServer, error) {
	bin, err := exec.LookPath("saslpasswd2")
	if err != nil {
		return nil, fmt.Errorf("saslpasswd2 not found on PATH")
	}
	dir, err := os.MkdirTemp("", "mcbin-sasl-")
	if err != nil {
		return nil, err
	}
	db := filepath.Join(dir, "sasldb")
	conf := "mech_list: plain\nsasldb_path: " + db + "\n"
	if err := os.WriteFile(filepath.Join(dir, "memcached.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	user, realm, _ := strings.Cut(saslUser, "@")
	cmd := exec.Command(bin, "-p", "-a", "memcached", "-c", "-f", db, "-u", realm, user)
	cmd.Stdin = strings.NewReader(saslPass)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("saslpasswd2: %v: %s", err, out)
	}
	return startMemcached([]string{"SASL_CONF_PATH=" + dir}, "-S")
}

// memcachedServer is a memcached started by this test binary, which it may
// kill and restart on the same port.
type memcachedServer struct {
	addr string
	env  []string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// startMemcached starts memcached with extra arguments on a free port.
func startMemcached(env []string, extra ...string) (*memcachedServer, error) {
	if _, err := exec.LookPath("memcached"); err != nil {
		return nil, fmt.Errorf("memcached not found on PATH")
	}
	var lastErr error
	for range 5 {
		port, err := servertest.FreePort()
		if err != nil {
			return nil, err
		}
		s := &memcachedServer{addr: fmt.Sprintf("127.0.0.1:%d", port), env: env}
		s.args = append([]string{"-l", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "0", "-m", "64"}, extra...)
		if os.Geteuid() == 0 {
			s.args = append(s.args, "-u", "root")
		}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

// startPrivate starts a plain memcached for one test and stops it at the
// end.
func startPrivate(t *testing.T, extra ...string) *memcachedServer {
	t.Helper()
	s, err := startMemcached(nil, extra...)
	need(t, "memcached", err)
	t.Cleanup(s.Kill)
	return s
}

func (s *memcachedServer) start() error {
	cmd := exec.Command("memcached", s.args...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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

// Kill stops the server with SIGKILL and waits until it has exited.
func (s *memcachedServer) Kill() {
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

// Restart starts the server again on its port, empty.
func (s *memcachedServer) Restart(t *testing.T) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("restart memcached: %v", err)
	}
}
