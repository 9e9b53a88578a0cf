package mcbin

import (
	"net/url"
	"testing"

	"github.com/echocache/echocache/internal/servertest"
)

// The servers of these tests come from servertest: the shared plain and
// SASL memcached (MemcachedSASL), and servers of a test's own for the
// tests that kill them (StartMemcached, StartMemcachedSASL). Under CI
// nothing is skipped: a missing program fails the test.

// plainAddr returns the host:port of a shared memcached without
// authentication.
func plainAddr(t testing.TB) string { return servertest.Memcached(t) }

// Credentials of the SASL servers servertest starts.
const (
	saslUser = servertest.AuthUser
	saslPass = servertest.AuthPass
)

// memcachedSASL returns a saslmemcached://user:pass@host:port URL of a
// shared memcached with SASL authentication (-S).
func memcachedSASL(t testing.TB) string {
	t.Helper()
	return servertest.MemcachedSASL(t)
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

// startMemcached starts a memcached of the test's own, killed when the
// test ends.
func startMemcached(t testing.TB, extra ...string) *servertest.Server {
	t.Helper()
	return servertest.StartMemcached(t, extra...)
}

// startMemcachedSASL starts a memcached -S of the test's own, with user
// saslUser and password saslPass, killed when the test ends.
func startMemcachedSASL(t testing.TB) *servertest.Server {
	t.Helper()
	return servertest.StartMemcachedSASL(t)
}
