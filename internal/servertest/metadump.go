package servertest

import (
	"bufio"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// MemcachedKeys lists every key a memcached server at addr holds, with
// "lru_crawler metadump all" (memcached's protocol.txt), for tests that
// check what a store left behind. It fails tb on any error.
func MemcachedKeys(tb testing.TB, addr string) []string {
	tb.Helper()
	// The server runs one crawler at a time: while another dump (of a test
	// running in parallel) or its own background crawl is under way, it
	// answers BUSY, and the dump is asked again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, busy := metadump(tb, addr, deadline)
		if !busy {
			return keys
		}
		if time.Now().After(deadline) {
			tb.Fatalf("servertest: metadump: %s's crawler stayed busy", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metadump lists the keys of addr once; busy reports that its crawler was
// busy and listed nothing.
func metadump(tb testing.TB, addr string, deadline time.Time) (keys []string, busy bool) {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("servertest: metadump: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		tb.Fatalf("servertest: metadump: %v", err)
	}
	if _, err := io.WriteString(conn, "lru_crawler metadump all\r\n"); err != nil {
		tb.Fatalf("servertest: metadump: %v", err)
	}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			tb.Fatalf("servertest: metadump: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			return keys, false
		}
		if strings.HasPrefix(line, "BUSY") && keys == nil {
			return nil, true
		}
		field, _, _ := strings.Cut(line, " ")
		enc, ok := strings.CutPrefix(field, "key=")
		if !ok {
			tb.Fatalf("servertest: metadump line %q", line)
		}
		k, err := url.PathUnescape(enc)
		if err != nil {
			tb.Fatalf("servertest: metadump key %q: %v", enc, err)
		}
		keys = append(keys, k)
	}
}
