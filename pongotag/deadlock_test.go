package pongotag_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/pongotag"
)

// Two templates nest two named blocks in opposite orders. Each render
// holds its outer block while it reaches the inner one, which the other
// render holds: neither may wait for the other.
func TestOppositeNestingDoesNotDeadlock(t *testing.T) {
	c, _, _ := newCache(t)
	a := mustParse(t, `{% cache 30 "a" %}A{{ meet() }}{% cache 30 "b" %}b{% endcache %}{% endcache %}`)
	b := mustParse(t, `{% cache 30 "b" %}B{{ meet() }}{% cache 30 "a" %}a{% endcache %}{% endcache %}`)
	var met sync.WaitGroup
	met.Add(2)
	// meet returns once both renders are inside their outer block.
	meet := func() string { met.Done(); met.Wait(); return "" }
	done := make(chan string, 2)
	for _, tpl := range []*pongo2.Template{a, b} {
		go func() {
			out, err := tpl.Execute(pongo2.Context{"meet": meet, pongotag.CacheVar: c})
			if err != nil {
				out = err.Error()
			}
			done <- out
		}()
	}
	// (Named blocks share their entry by name, as in Django, so which
	// inner text each page shows depends on which render stored it first;
	// what matters is that both finish.)
	for range 2 {
		select {
		case out := <-done:
			if out == "" || (out[0] != 'A' && out[0] != 'B') {
				t.Errorf("render = %q; want its outer block's output", out)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("renders of opposite nestings wait for each other")
		}
	}
}

// A caller waiting for another caller's render leaves when its context ends.
func TestFillFragmentWaiterLeavesOnCancel(t *testing.T) {
	c, _, _ := newCache(t)
	started, release := make(chan struct{}), make(chan struct{})
	leader := make(chan error, 1)
	go func() {
		_, _, err := (*core.Cache)(c).FillFragment(context.Background(), "f:slow", time.Minute, func() ([]byte, error) {
			close(started)
			<-release
			return []byte("x"), nil
		})
		leader <- err
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() {
		_, _, err := (*core.Cache)(c).FillFragment(ctx, "f:slow", time.Minute, func() ([]byte, error) { return []byte("y"), nil })
		waiter <- err
	}()
	cancel()
	select {
	case err := <-waiter:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("waiter error = %v; want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a waiter whose context ended is still waiting for the render")
	}
	close(release)
	if err := <-leader; err != nil {
		t.Errorf("leader error = %v", err)
	}
}
