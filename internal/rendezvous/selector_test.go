package rendezvous_test

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/echocache/echocache/internal/rendezvous"
	"github.com/echocache/echocache/internal/servertest"
)

func TestServerSelectorAgreesWithRing(t *testing.T) {
	names := []string{"127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213"}
	sel, err := rendezvous.NewServerSelector(names...)
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := rendezvous.New(names...)
	for i := range 1000 {
		k := fmt.Sprint("key-", i)
		a, err := sel.PickServer(k)
		if err != nil {
			t.Fatalf("PickServer(%q) error: %v", k, err)
		}
		if got, want := a.String(), ring.Node(k); got != want {
			t.Fatalf("PickServer(%q) = %s; want %s", k, got, want)
		}
	}
	var seen []string
	stop := errors.New("stop")
	err = sel.Each(func(a net.Addr) error {
		seen = append(seen, a.String())
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	if err != stop || len(seen) != 2 || seen[0] != names[0] || seen[1] != names[1] {
		t.Errorf("Each stopped with %v after %q; want the callback's error after %q", err, seen, names[:2])
	}
}

func TestNewServerSelectorRejects(t *testing.T) {
	for _, servers := range [][]string{nil, {"127.0.0.1:1", "127.0.0.1:1"}, {"127.0.0.1:notaport"}} {
		if _, err := rendezvous.NewServerSelector(servers...); err == nil {
			t.Errorf("NewServerSelector(%q) succeeded; want an error", servers)
		}
	}
}

func TestServerSelectorWithGomemcache(t *testing.T) {
	addr := servertest.Memcached(t)
	sel, err := rendezvous.NewServerSelector(addr)
	if err != nil {
		t.Fatal(err)
	}
	c := memcache.NewFromSelector(sel)
	defer c.Close()
	key := "rendezvous-selector-test"
	if err := c.Set(&memcache.Item{Key: key, Value: []byte("v")}); err != nil {
		t.Fatalf("Set through the selector: %v", err)
	}
	it, err := c.Get(key)
	if err != nil || string(it.Value) != "v" {
		t.Fatalf("Get through the selector = %v, %v; want \"v\"", it, err)
	}
}

func ExampleRing() {
	ring, err := rendezvous.New("10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211")
	if err != nil {
		panic(err)
	}
	// Every process that lists the same servers, in any order, agrees.
	other, _ := rendezvous.New("10.0.0.3:11211", "10.0.0.1:11211", "10.0.0.2:11211")
	fmt.Println(ring.Node("user:42") == other.Node("user:42"))
	// Output: true
}
