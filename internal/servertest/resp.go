package servertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// This file is the little of the Redis protocol (RESP2) the package needs
// to see that a server is up and a topology is healthy; tests talk to
// servers with go-redis.

// redisDo sends one command to the redis-server or sentinel at addr on a
// fresh connection, bounded by ctx and a second, and returns the reply:
// a string (simple or bulk), an int64, a []any, nil for a null, or an
// error for an error reply.
func redisDo(ctx context.Context, addr string, args ...string) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	return respCall(conn, args...)
}

// redisText is redisDo for commands that reply with text (INFO, CLUSTER
// INFO, CLUSTER NODES).
func redisText(ctx context.Context, addr string, args ...string) (string, error) {
	v, err := redisDo(ctx, addr, args...)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: reply %v is not text", args[0], v)
	}
	return s, nil
}

// respCall writes one command on conn and reads its reply.
func respCall(conn net.Conn, args ...string) (any, error) {
	b := strconv.AppendInt([]byte{'*'}, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	if _, err := conn.Write(b); err != nil {
		return nil, err
	}
	return respRead(bufio.NewReader(conn))
}

// respRead reads one reply.
func respRead(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return nil, errors.New("empty RESP line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errors.New(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		a := make([]any, n)
		for i := range a {
			if a[i], err = respRead(r); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	return nil, fmt.Errorf("unexpected RESP reply %q", line)
}

// infoField returns the value of a "name:value" line of an INFO reply.
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), name+":"); ok {
			return v
		}
	}
	return ""
}

// redisPID is the probe of every redis-server and sentinel: the
// process_id of INFO server.
func redisPID(conn net.Conn) (int, error) {
	v, err := respCall(conn, "INFO", "server")
	if err != nil {
		return 0, err
	}
	info, _ := v.(string)
	return strconv.Atoi(infoField(info, "process_id"))
}
