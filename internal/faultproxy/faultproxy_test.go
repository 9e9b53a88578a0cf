package faultproxy_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/faultproxy"
)

// echoServer answers each line it reads with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(addr, line string) (string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func TestProxy(t *testing.T) {
	p := faultproxy.Start(t, echoServer(t))

	got, err := roundTrip(p.Addr(), "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello", got, "a line through the proxy")

	p.CutAfter(100)
	_, err = roundTrip(p.Addr(), strings.Repeat("x", 1000))
	require.Error(t, err, "a line longer than the limit must be cut")
	got, err = roundTrip(p.Addr(), "short")
	require.NoError(t, err)
	assert.Equal(t, "short", got, "a line under the limit passes")

	p.CutAfter(0)
	p.SetDown(true)
	_, err = roundTrip(p.Addr(), "hello")
	require.Error(t, err, "a connection while the proxy is down")
	p.SetDown(false)
	got, err = roundTrip(p.Addr(), strings.Repeat("y", 1000))
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("y", 1000), got, "after SetDown(false) and without a limit")
}
