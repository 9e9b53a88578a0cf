package servertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Credentials of the authenticated memcached servers this package starts,
// with ASCII authentication (-Y) and with SASL (-S) alike.
const (
	AuthUser = "echocache"
	AuthPass = "s3cret-pass"
)

// newMemcached prepares a memcached without authentication, with extra
// arguments after the package's own (a later one wins: "-m", "256").
func newMemcached(dir string, extra ...string) (*Server, error) {
	path, err := lookPath("memcached")
	if err != nil {
		return nil, err
	}
	return &Server{
		name: "memcached", path: path, dir: dir, probe: memcachedPID("", ""),
		args: func(port int) []string { return append(memcachedArgs(port), extra...) },
	}, nil
}

// newMemcachedAuth prepares a memcached with ASCII authentication (-Y):
// AuthUser and AuthPass, in an authfile in dir.
func newMemcachedAuth(dir string, extra ...string) (*Server, error) {
	s, err := newMemcached(dir, extra...)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	authfile := filepath.Join(dir, "authfile")
	if err := os.WriteFile(authfile, []byte(AuthUser+":"+AuthPass+"\n"), 0o600); err != nil {
		return nil, err
	}
	s.name, s.probe = "memcached -Y", memcachedPID(AuthUser, AuthPass)
	s.args = func(port int) []string {
		return append(append(memcachedArgs(port), "-Y", authfile), extra...)
	}
	return s, nil
}

// newMemcachedSASL prepares a memcached with SASL authentication (-S),
// which speaks only the binary protocol: AuthUser and AuthPass in a
// sasldb made with saslpasswd2, and a SASL configuration allowing the
// PLAIN mechanism, found through SASL_CONF_PATH (Debian's memcached is not
// built with MEMCACHED_SASL_PWDB).
func newMemcachedSASL(ctx context.Context, dir string, extra ...string) (*Server, error) {
	s, err := newMemcached(dir, extra...)
	if err != nil {
		return nil, err
	}
	saslpasswd2, err := lookPath("saslpasswd2")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db := filepath.Join(dir, "sasldb2")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, saslpasswd2, "-a", "memcached", "-c", "-p", "-f", db, AuthUser)
	cmd.Stdin = strings.NewReader(AuthPass) // -p: the password is all of stdin, no newline
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("servertest: saslpasswd2: %v: %s", err, out)
	}
	conf := "mech_list: plain\nsasldb_path: " + db + "\n"
	if err := os.WriteFile(filepath.Join(dir, "memcached.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	s.name, s.probe = "memcached -S", memcachedSASLPID(AuthUser, AuthPass)
	s.env = []string{"SASL_CONF_PATH=" + dir}
	s.args = func(port int) []string {
		return append(append(memcachedArgs(port), "-S"), extra...)
	}
	return s, nil
}

// memcachedArgs are the arguments of every memcached of the package: TCP
// on loopback only, 64 MiB. memcached refuses to run as root without -u.
func memcachedArgs(port int) []string {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "64"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	return args
}

// StartMemcached starts a memcached of the test's own on a free loopback
// port, for tests that kill, pause or fill it; extra arguments are added
// after the package's own ("-I", "2m"; the memory limit is "-m", "64"). It
// is killed when the test ends. Without memcached the test is skipped
// (failed with CI=true).
func StartMemcached(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s, err := newMemcached(tb.TempDir(), extra...)
	return startPrivate(tb, s, err)
}

// StartMemcachedAuth is StartMemcached with memcached's ASCII
// authentication (-Y), user AuthUser with password AuthPass.
func StartMemcachedAuth(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s, err := newMemcachedAuth(tb.TempDir(), extra...)
	return startPrivate(tb, s, err)
}

// StartMemcachedSASL is StartMemcached with SASL authentication (-S) over
// the binary protocol, user AuthUser with password AuthPass, mechanism
// PLAIN. It needs saslpasswd2 (Debian's sasl2-bin) and the PLAIN plugin
// (libsasl2-modules).
func StartMemcachedSASL(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s, err := newMemcachedSASL(tb.Context(), tb.TempDir(), extra...)
	return startPrivate(tb, s, err)
}

// memcachedPID returns the probe of an ASCII memcached: it logs in with
// -Y's "set" when user is not empty, then reads the pid of "stats".
func memcachedPID(user, pass string) func(net.Conn) (int, error) {
	return func(conn net.Conn) (int, error) {
		r := bufio.NewReader(conn)
		if user != "" {
			cred := user + " " + pass
			if _, err := fmt.Fprintf(conn, "set auth 0 0 %d\r\n%s\r\n", len(cred), cred); err != nil {
				return 0, err
			}
			line, err := r.ReadString('\n')
			if err != nil {
				return 0, err
			}
			if line != "STORED\r\n" {
				return 0, fmt.Errorf("-Y authentication: %w: %q", errRefused, strings.TrimSpace(line))
			}
		}
		if _, err := conn.Write([]byte("stats\r\n")); err != nil {
			return 0, err
		}
		pid := 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return 0, err
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "END" {
				break
			}
			if v, ok := strings.CutPrefix(line, "STAT pid "); ok {
				pid, _ = strconv.Atoi(v)
			}
		}
		if pid == 0 {
			return 0, errors.New("stats without a pid")
		}
		return pid, nil
	}
}

// memcachedSASLPID returns the probe of a SASL memcached: it
// authenticates with PLAIN, then reads the pid of the binary STAT.
func memcachedSASLPID(user, pass string) func(net.Conn) (int, error) {
	return func(conn net.Conn) (int, error) {
		r := bufio.NewReader(conn)
		if err := saslPlain(conn, r, user, pass); err != nil {
			return 0, err
		}
		return binaryStatPID(conn, r)
	}
}
