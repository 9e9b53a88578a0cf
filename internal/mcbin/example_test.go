package mcbin_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/echocache/echocache/internal/mcbin"
)

// A client for a memcached started with SASL (memcached -S), reading an
// item and telling a miss, a refusal and an outage apart.
func ExampleClient() {
	c, err := mcbin.New(mcbin.Config{
		Addr:     "127.0.0.1:11211",
		Username: "app",
		Password: "secret",
	})
	if err != nil {
		log.Fatal(err) // a bad Config, found without any I/O
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	it, err := c.Get(ctx, "greeting")
	switch {
	case err == nil:
		fmt.Printf("%s (flags %d)\n", it.Value, it.Flags)
	case errors.Is(err, mcbin.ErrNotFound):
		fmt.Println("miss")
	case errors.Is(err, mcbin.ErrAuth):
		log.Fatal(err) // names the server and the user, never the password
	case mcbin.IsTransport(err):
		fmt.Println("server unavailable:", err) // what a circuit breaker counts
	default:
		fmt.Println(err)
	}
}

// GetMulti reads several keys in one round trip and reports the hits by
// their index.
func ExampleClient_GetMulti() {
	c, err := mcbin.New(mcbin.Config{Addr: "127.0.0.1:11211"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	keys := []string{"a", "b", "c"}
	values := make([][]byte, len(keys))
	err = c.GetMulti(context.Background(), keys, func(i int, it mcbin.Item) {
		values[i] = it.Value
	})
	fmt.Println(values, err)
}

// Incr creates an absent counter holding its initial value, in one round
// trip; NoCreate makes an absent counter a miss instead.
func ExampleClient_Incr() {
	c, err := mcbin.New(mcbin.Config{Addr: "127.0.0.1:11211"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	n, err := c.Incr(ctx, "visits", 1, 1, 3600) // 1 if absent, with a 1 h lifetime
	fmt.Println(n, err)
	_, err = c.Decr(ctx, "no-such-counter", 1, 0, mcbin.NoCreate)
	fmt.Println(errors.Is(err, mcbin.ErrNotFound))
}
