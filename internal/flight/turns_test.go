package flight

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
)

// join starts a caller of key in a goroutine and reports, on the returned
// channel, whether it got a turn (then ends it with end) or the value.
func join(g *Turns[string], key string, end func(*Turn[string])) chan string {
	out := make(chan string, 1)
	go func() {
		t, v, err := g.Join(context.Background(), key, nil)
		switch {
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
		{"ok, answered: the waiter runs itself", func(t *Turn[string]) { t.Answered() }, "ran"},
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

// After an answer that could not be shared, two waiters run at once (slow
// start); after a failure, one at a time.
func TestTurnsSlowStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Turns[string]
		release := make(chan struct{})
		first := join(&g, "k", func(t *Turn[string]) { <-release; t.Answered() })
		synctest.Wait()
		hold := make(chan struct{})
		a := join(&g, "k", func(*Turn[string]) { <-hold })
		b := join(&g, "k", func(*Turn[string]) { <-hold })
		synctest.Wait()
		close(release)
		<-first
		synctest.Wait()
		g.mu.Lock()
		running := g.flights["k"].running
		g.mu.Unlock()
		if running != 2 {
			t.Errorf("running after an answered turn = %d; want 2", running)
		}
		close(hold)
		<-a
		<-b
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
