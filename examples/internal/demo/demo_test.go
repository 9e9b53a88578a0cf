package demo

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

func TestOpenStore(t *testing.T) {
	// A port nothing listens on, for a redis URL that cannot answer.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	tests := []struct {
		name string
		url  string
		want []string // substrings of the error; nil means success
	}{
		{name: "ok, memory", url: "memory://"},
		{name: "ok, memory with bounds", url: "memory://?max_bytes=1MiB&max_entries=10"},
		{name: "ok, null", url: "null://"},
		{name: "ok, file", url: "file://" + t.TempDir() + "?prefix=demo"},
		{name: "nok, unknown scheme", url: "bogus://x", want: []string{"CACHE_URL bogus://x", `unknown store scheme "bogus"`}},
		{name: "nok, no scheme", url: "localhost:6379", want: []string{"CACHE_URL"}},
		{name: "nok, unknown parameter", url: "memory://?max_byte=1", want: []string{`unknown parameter "max_byte"`}},
		{name: "nok, bad value", url: "memory://?max_bytes=lots", want: []string{"max_bytes", "lots"}},
		{name: "nok, malformed", url: "redis://[::1", want: []string{"CACHE_URL (malformed URL)", "malformed store URL"}},
		{name: "nok, server down, password hidden", url: "redis://u:hunter2@" + dead + "/0", want: []string{"CACHE_URL redis://u:xxxxx@" + dead, "does not answer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, err := OpenStore(t.Context(), tt.url)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("OpenStore(%q) = %v; want a store", tt.url, err)
				}
				store.Close()
				return
			}
			if err == nil {
				store.Close()
				t.Fatalf("OpenStore(%q) succeeded; want an error", tt.url)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("OpenStore(%q) = %q; want it to contain %q", tt.url, msg, w)
				}
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("OpenStore(%q) = %q; the password leaks", tt.url, msg)
			}
			if strings.ContainsAny(oneLine(err).Error(), "\r\n") {
				t.Errorf("oneLine(%q) spans lines", msg)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"memory://", "memory://"},
		{"redis://127.0.0.1:6379/0?prefix=a:", "redis://127.0.0.1:6379/0?prefix=a:"},
		{"redis://user:pw@127.0.0.1:6379/0", "redis://user:xxxxx@127.0.0.1:6379/0"},
		{"memcached://user@h:1", "memcached://user@h:1"},
		{"redis://[::1", "(malformed URL)"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got, want := oneLine(errors.New("a\nb\r\n  c")).Error(), "a b c"; got != want {
		t.Errorf("oneLine = %q; want %q", got, want)
	}
	err := errors.New("plain")
	if got := oneLine(err); got != err {
		t.Errorf("oneLine(plain) = %v; want the same error", got)
	}
}

func TestServeStopsWhenCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.GET("/", func(c echo.Context) error { return c.String(http.StatusOK, "up") })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, e, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "up" {
		t.Errorf("GET / = %q; want %q", body, "up")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v after cancel; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of its context being cancelled")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("still listening after Serve returned")
	}
}
