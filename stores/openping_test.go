package stores_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

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
	sasl.User = url.UserPassword(sasl.User.Username(), "Wr0ng-pa55word")
	tests := []struct {
		name string
		url  string
		want []string // substrings of the error; nil: a store
		is   error
	}{
		{name: "ok, memory", url: "memory://"},
		{name: "ok, redis", url: servertest.Redis(t)},
		{name: "ok, memcached pool", url: "memcached://" + strings.Join(pool, ",")},
		{name: "ok, memcached pool with one server down", url: "memcached://" + pool[0] + "," + pool[1] + "," + dead},
		{name: "ok, redis cluster with one seed down", url: "redis+cluster://" + dead + "," + strings.Join(servertest.RedisClusterAddrs(t), ",") + "/"},
		{name: "nok, memcached pool with every server down", url: "memcached://" + dead + "," + deadAddr(t), want: []string{"stores: store does not answer"}},
		{name: "nok, redis down", url: "redis://u:hunter2@" + dead + "/0", want: []string{"stores: store does not answer", dead}},
		{name: "nok, wrong SASL password", url: sasl.String(), want: []string{"authentication failed"}, is: stores.ErrAuth},
		{name: "nok, unknown scheme", url: "bogus://", want: []string{`unknown store scheme "bogus"`}},
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
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("OpenAndPing(%s) = %v; want errors.Is %v", tt.url, err, tt.is)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "Wr0ng") {
				t.Errorf("OpenAndPing(%s) = %q shows the password", tt.url, err)
			}
		})
	}
}
