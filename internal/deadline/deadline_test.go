package deadline

import (
	"context"
	"testing"
	"time"
)

func TestContext(t *testing.T) {
	d := time.Now().Add(time.Hour)
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	c := With(parent, d)
	if got, ok := c.Deadline(); !ok || !got.Equal(d) {
		t.Errorf("Deadline() = %v, %v; want %v, true", got, ok, d)
	}
	if c.Value(key{}) != "v" {
		t.Error("Value does not reach the parent's")
	}
	if c.Err() != nil {
		t.Errorf("Err() = %v before the parent ends", c.Err())
	}
	cancel()
	<-c.Done()
	if c.Err() != context.Canceled {
		t.Errorf("Err() = %v after the parent's cancellation; want context.Canceled", c.Err())
	}

	early, cancelEarly := context.WithDeadline(context.Background(), d.Add(-time.Minute))
	defer cancelEarly()
	if got, _ := With(early, d).Deadline(); !got.Equal(d.Add(-time.Minute)) {
		t.Errorf("Deadline() under an earlier parent deadline = %v; want the parent's", got)
	}
	past := With(context.Background(), time.Now().Add(-time.Second))
	if past.Err() != nil || past.Done() != nil {
		t.Error("a passed deadline signals nothing: nothing fires at it")
	}
}

func TestRegister(t *testing.T) {
	type honouring struct{}
	type other struct{}
	Register(func(s any) bool { _, ok := s.(*honouring); return ok })
	if !Honoured(&honouring{}) {
		t.Error("Honoured(a registered store) = false")
	}
	if Honoured(&other{}) {
		t.Error("Honoured(another store) = true")
	}
}
