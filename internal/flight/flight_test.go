package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDoSharesOneCall(t *testing.T) {
	var g Group[int]
	var calls atomic.Int32
	release := make(chan struct{})
	const n = 50
	var started sync.WaitGroup
	started.Add(n)
	var wg sync.WaitGroup
	results := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			v, _, err := g.Do(context.Background(), "k", func(context.Context) (int, error) {
				calls.Add(1)
				<-release
				return 42, nil
			})
			if err != nil {
				t.Errorf("Do: %v", err)
			}
			results[i] = v
		}()
	}
	started.Wait()
	// Every caller is either in Do or about to be; wait until the call
	// has started, then release it.
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	// Callers that arrived after the call ended start a new one; what
	// matters is that concurrent callers shared: far fewer calls than
	// callers, and every caller got the value.
	if got := calls.Load(); got >= n {
		t.Errorf("calls = %d; want fewer than %d", got, n)
	}
	for i, v := range results {
		if v != 42 {
			t.Errorf("result[%d] = %d; want 42", i, v)
		}
	}
}

func TestImpatientCallerDoesNotCancelOthers(t *testing.T) {
	var g Group[string]
	inCall := make(chan struct{})
	release := make(chan struct{})
	fn := func(ctx context.Context) (string, error) {
		close(inCall)
		select {
		case <-release:
			return "done", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	impatient, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := g.Do(impatient, "k", fn)
		errc <- err
	}()
	<-inCall

	patient := make(chan string, 1)
	go func() {
		v, shared, err := g.Do(context.Background(), "k", fn)
		if err != nil || !shared {
			t.Errorf("patient Do = %q, shared %v, %v; want shared result", v, shared, err)
		}
		patient <- v
	}()
	// Wait until the patient caller is registered as a waiter.
	for {
		g.mu.Lock()
		w := g.calls["k"].waiters
		g.mu.Unlock()
		if w == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("impatient Do error = %v; want context.Canceled", err)
	}
	close(release)
	if v := <-patient; v != "done" {
		t.Fatalf("patient got %q; want done", v)
	}
}

func TestCallCancelledWhenEveryWaiterLeft(t *testing.T) {
	var g Group[int]
	ctx, cancel := context.WithCancel(context.Background())
	callCtxDone := make(chan struct{})
	inCall := make(chan struct{})
	go func() {
		_, _, _ = g.Do(ctx, "k", func(c context.Context) (int, error) {
			close(inCall)
			<-c.Done()
			close(callCtxDone)
			return 0, c.Err()
		})
	}()
	<-inCall
	cancel()
	select {
	case <-callCtxDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the shared call's context was not cancelled after its only waiter left")
	}
}

func TestPanicReachesEveryCaller(t *testing.T) {
	var g Group[int]
	_, _, err := g.Do(context.Background(), "k", func(context.Context) (int, error) {
		panic("boom")
	})
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" {
		t.Fatalf("Do error = %v; want *PanicError(boom)", err)
	}
	// The key is free again.
	v, _, err := g.Do(context.Background(), "k", func(context.Context) (int, error) { return 7, nil })
	if err != nil || v != 7 {
		t.Fatalf("Do after panic = %d, %v; want 7, nil", v, err)
	}
}

func TestCallContextKeepsValues(t *testing.T) {
	type key struct{}
	var g Group[string]
	ctx := context.WithValue(context.Background(), key{}, "v")
	got, _, err := g.Do(ctx, "k", func(c context.Context) (string, error) {
		s, _ := c.Value(key{}).(string)
		return s, nil
	})
	if err != nil || got != "v" {
		t.Fatalf("value in call context = %q, %v; want v", got, err)
	}
}
