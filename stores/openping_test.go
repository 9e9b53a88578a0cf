package stores_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/echocache/echocache/internal/servertest"
	"github.com/echocache/echocache/stores"
)

func deadAddr(t *testing.T) string {
	t.Helper()
	port, err := servertest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// OpenAndPing starts on a pool with one server down, as a cluster starts
// with one seed down, and refuses a pool with none up, a server that is
// down, a wrong password and a bad URL, without showing the password.
func TestOpenAndPing(t *testing.T) {
	dead := deadAddr(t)
	pool := servertest.MemcachedPool(t)
	sasl, err := url.Parse(servertest.MemcachedSASL(t))
	if err != nil {
		t.Fatal(err)
	}
	saslAddr, asciiAuthAddr := sasl.Host, hostOf(t, servertest.MemcachedAuth(t))
	sasl.User = url.UserPassword(sasl.User.Username(), "Wr0ng-pa55word")
	// A redis whose default user may read only keys of another namespace:
	// PING works, every call of the store is refused (NOPERM).
	acl := servertest.StartRedis(t, "--user", "default", "on", "nopass", "~other:*", "+@all")
	// A redis with a password (set once it runs: the launcher checks it
	// answers without one).
	locked := servertest.StartRedis(t)
	func() {
		c := redis.NewClient(&redis.Options{Addr: locked.Addr()})
		defer c.Close()
		if err := c.ConfigSet(t.Context(), "requirepass", "right-pass").Err(); err != nil {
			t.Fatal(err)
		}
	}()
	asciiWrong, err := url.Parse(servertest.MemcachedAuth(t))
	if err != nil {
		t.Fatal(err)
	}
	asciiWrong.User = url.UserPassword(asciiWrong.User.Username(), "Wr0ng-pa55word")
	const needCreds = "credentials are probably needed"
	tests := []struct {
		name string
		url  string
		want []string // substrings of the error; nil: a store
		not  string   // a substring the error must not contain
		is   error
	}{
		{name: "ok, memory", url: "memory://"},
		{name: "ok, redis", url: servertest.Redis(t)},
		{name: "ok, memcached pool", url: "memcached://" + strings.Join(pool, ",")},
		{name: "ok, memcached pool with one server down", url: "memcached://" + pool[0] + "," + pool[1] + "," + dead},
		{name: "ok, redis cluster with one seed down", url: "redis+cluster://" + dead + "," + strings.Join(servertest.RedisClusterAddrs(t), ",") + "/"},
		{name: "nok, memcached pool with every server down", url: "memcached://" + dead + "," + deadAddr(t), want: []string{"stores: store does not answer"}},
		{name: "nok, redis down", url: "redis://u:hunter2@" + dead + "/0", want: []string{"stores: store does not answer", dead}},
		{name: "nok, wrong SASL password", url: sasl.String(), want: []string{"refused the credentials", "authentication failed"}, not: "does not answer", is: stores.ErrAuth},
		{name: "nok, wrong -Y password", url: asciiWrong.String(), want: []string{"refused the credentials", "authentication failed"}, not: "does not answer", is: stores.ErrAuth},
		{name: "nok, wrong redis password", url: "redis://:hunter2@" + locked.Addr() + "/0", want: []string{"refused the credentials", "authentication failed", "WRONGPASS"}, not: "does not answer", is: stores.ErrAuth},
		{name: "nok, redis password missing", url: "redis://" + locked.Addr() + "/0", want: []string{"refused the credentials", "NOAUTH"}, not: "does not answer", is: stores.ErrAuth},
		{name: "nok, unknown scheme", url: "bogus://", want: []string{`unknown store scheme "bogus"`}},
		{name: "nok, memcached without credentials on a SASL server", url: "memcached://" + saslAddr, want: []string{"requires SASL authentication"}, is: stores.ErrAuth},
		{name: "nok, memcached pool with a server requiring SASL", url: "memcached://" + pool[0] + "," + saslAddr, want: []string{"requires SASL authentication"}, is: stores.ErrAuth},
		{name: "nok, memcached ASCII without credentials on a SASL server", url: "memcached://" + saslAddr + "?protocol=ascii", want: []string{needCreds}},
		{name: "nok, memcached without credentials on an ASCII-auth server", url: "memcached://" + asciiAuthAddr, want: []string{needCreds}},
		{name: "nok, memcached ASCII without credentials on an ASCII-auth server", url: "memcached://" + asciiAuthAddr + "?protocol=ascii", want: []string{"requires ASCII authentication"}, is: stores.ErrAuth},
		{name: "nok, redis that refuses the namespace's keys", url: "redis://" + acl.Addr() + "/0", want: []string{"NOPERM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, err := stores.OpenAndPing(t.Context(), tt.url)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("OpenAndPing(%s) = %v; want a store", tt.url, err)
				}
				store.Close()
				return
			}
			if err == nil {
				store.Close()
				t.Fatalf("OpenAndPing(%s) succeeded; want an error", tt.url)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("OpenAndPing(%s) = %q; want it to contain %q", tt.url, err, w)
				}
			}
			if tt.not != "" && strings.Contains(err.Error(), tt.not) {
				t.Errorf("OpenAndPing(%s) = %q; must not say %q", tt.url, err, tt.not)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("OpenAndPing(%s) = %v; want errors.Is %v", tt.url, err, tt.is)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "Wr0ng") {
				t.Errorf("OpenAndPing(%s) = %q shows the password", tt.url, err)
			}
		})
	}
}

// hostOf returns the host:port of a store URL.
func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
