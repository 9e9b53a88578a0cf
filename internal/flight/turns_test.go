package flight

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// join starts a caller of key in a goroutine and reports, on the returned
// channel, whether it got a turn (then ends it with end) or the value.
func join(g *Turns[string], key string, end func(*Turn[string])) chan string {
	out := make(chan string, 1)
	go func() {
		t, v, err := g.Join(context.Background(), key, nil)
		switch {
		case errors.Is(err, ErrPass):
			out <- "pass"
		case err != nil:
			out <- "error " + err.Error()
		case t != nil:
			end(t)
			t.End()
			out <- "ran"
		default:
			out <- "got " + v
		}
	}()
	return out
}

func TestTurns(t *testing.T) {
	tests := []struct {
		name string
		end  func(*Turn[string]) // what the first runner does
		want string              // what the second caller gets
	}{
		{"ok, shared: the waiter gets the value", func(t *Turn[string]) { t.Share("page") }, "got page"},
		{"ok, failed: the waiter runs itself", func(*Turn[string]) {}, "ran"},
		{"ok, passed: the waiter is released to run for itself", func(t *Turn[string]) { t.Pass() }, "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var g Turns[string]
				release := make(chan struct{})
				first := join(&g, "k", func(t *Turn[string]) { <-release; tt.end(t) })
				synctest.Wait()
				second := join(&g, "k", func(*Turn[string]) {})
				synctest.Wait()
				close(release)
				if got := <-first; got != "ran" {
					t.Errorf("first caller: %s; want ran", got)
				}
				if got := <-second; got != tt.want {
					t.Errorf("second caller: %s; want %s", got, tt.want)
				}
				if len(g.flights) != 0 {
					t.Errorf("%d flights left; want none", len(g.flights))
				}
			})
		})
	}
}

// After an answer that cannot be shared, every waiter is released at once,
// and later callers do not wait while the key is marked pass; after a
// failure, one waiter runs, and after a second failure the rest are
// released.
func TestTurnsPass(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first func(*Turn[string])
		// second is what the first waiter does when it gets the turn
		// (nil: it is released without one).
		second func(*Turn[string])
	}{
		{name: "ok, passed", first: func(t *Turn[string]) { t.Pass() }},
		{name: "ok, failed twice", first: func(*Turn[string]) {}, second: func(*Turn[string]) {}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var g Turns[string]
				release := make(chan struct{})
				first := join(&g, "k", func(t *Turn[string]) { t.PassFor(time.Second); <-release; tt.first(t) })
				synctest.Wait()
				const n = 5
				waiters := make([]chan string, n)
				for i := range waiters {
					waiters[i] = join(&g, "k", func(t *Turn[string]) {
						t.PassFor(time.Second)
						if tt.second == nil {
							panic("a turn after a pass")
						}
						tt.second(t)
					})
				}
				synctest.Wait()
				close(release)
				<-first
				ran, passed := 0, 0
				for _, w := range waiters {
					switch got := <-w; got {
					case "ran":
						ran++
					case "pass":
						passed++
					default:
						t.Errorf("a waiter: %s", got)
					}
				}
				wantRan := 0
				if tt.second != nil {
					wantRan = 1
				}
				if ran != wantRan || passed != n-wantRan {
					t.Errorf("%d waiters ran in a turn, %d were released; want %d, %d", ran, passed, wantRan, n-wantRan)
				}
				if got := <-join(&g, "k", func(*Turn[string]) {}); got != "pass" {
					t.Errorf("a caller while the key is marked pass: %s; want pass", got)
				}
				time.Sleep(time.Second) // synctest's clock: the mark expires
				if got := <-join(&g, "k", func(*Turn[string]) {}); got != "ran" {
					t.Errorf("a caller once the mark expired: %s; want ran", got)
				}
				if len(g.flights) != 0 {
					t.Errorf("%d flights left; want none", len(g.flights))
				}
			})
		})
	}
}

// Without a pass duration, failures hand the turn on one waiter at a time
// however many fail (fragments).
func TestTurnsFailuresWithoutPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Turns[string]
		release := make(chan struct{})
		first := join(&g, "k", func(*Turn[string]) { <-release })
		synctest.Wait()
		waiters := make([]chan string, 4)
		for i := range waiters {
			waiters[i] = join(&g, "k", func(*Turn[string]) {})
		}
		synctest.Wait()
		close(release)
		<-first
		for _, w := range waiters {
			if got := <-w; got != "ran" {
				t.Errorf("a waiter: %s; want ran", got)
			}
		}
	})
}

func TestTurnsWaiterLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Turns[string]
		release := make(chan struct{})
		first := join(&g, "k", func(t *Turn[string]) { <-release })
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, _, err := g.Join(ctx, "k", nil)
			done <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Join after cancel = %v; want context.Canceled", err)
		}
		close(release)
		<-first
		if len(g.flights) != 0 {
			t.Errorf("%d flights left; want none", len(g.flights))
		}
	})
}
