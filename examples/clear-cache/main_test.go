package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/echocache/echocache/stores"
)

// TestClearsOnlyItsNamespace plays two apps sharing one file store
// directory under different prefixes, as two apps would share a redis
// server: clearing one leaves the other's entries alone.
func TestClearsOnlyItsNamespace(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	appURL := "file://" + dir + "?prefix=app"
	otherURL := "file://" + dir + "?prefix=other"

	app := openStore(t, appURL)
	other := openStore(t, otherURL)
	for _, s := range []stores.Store{app, other} {
		if err := s.Set(ctx, "a_key", []byte("stored"), time.Hour); err != nil {
			t.Fatalf("Set: %v", err)
		}
	}

	var out bytes.Buffer
	if err := run(ctx, appURL, &out); err != nil {
		t.Fatalf("run(%q) = %v", appURL, err)
	}
	if got, want := out.String(), `cleared namespace "app" of file://`+dir; !strings.HasPrefix(got, want) {
		t.Errorf("run printed %q; want it to start with %q", got, want)
	}

	if _, err := app.Get(ctx, "a_key"); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("after clear-cache, the app's a_key: err = %v; want ErrNotFound", err)
	}
	if v, err := other.Get(ctx, "a_key"); err != nil || string(v) != "stored" {
		t.Errorf("after clear-cache, the other namespace's a_key = %q, %v; want it kept", v, err)
	}
}

func TestBadURL(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), "bogus://x", &out)
	if err == nil || !strings.Contains(err.Error(), `unknown store scheme "bogus"`) {
		t.Errorf(`run("bogus://x") = %v; want an error naming the scheme`, err)
	}
	if out.Len() != 0 {
		t.Errorf("run printed %q after failing; want nothing", out.String())
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct{ url, want string }{
		{"memory://", "memory:// (an in-process store"},
		{"null://", "null:// (it stores nothing)"},
		{"redis://u:secret@127.0.0.1:6379/0?prefix=app:", `namespace "app:" of redis://u:xxxxx@127.0.0.1:6379/0?prefix=app:; other namespaces are untouched`},
		{"memcached://127.0.0.1:11211", "the default namespace of memcached://127.0.0.1:11211"},
	}
	for _, tt := range tests {
		if got := describe(tt.url); !strings.HasPrefix(got, tt.want) {
			t.Errorf("describe(%q) = %q; want it to start with %q", tt.url, got, tt.want)
		}
	}
}

func openStore(t *testing.T, rawURL string) stores.Store {
	t.Helper()
	s, err := stores.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("stores.Open(%q): %v", rawURL, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
