package servertest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
)

// This file is the little of memcached's binary protocol the package needs
// to see that a SASL memcached is up: SASL PLAIN authentication and STAT.
// https://github.com/memcached/memcached/wiki/BinaryProtocolRevamped and
// https://github.com/memcached/memcached/wiki/SASLAuthProtocol.

// Binary protocol constants.
const (
	mcRequest    = 0x80 // magic of a request
	mcResponse   = 0x81 // magic of a response
	mcOpStat     = 0x10
	mcOpSASLAuth = 0x21

	mcStatusOK        = 0x0000
	mcStatusAuthError = 0x0020
)

// errRefused is a server refusing the package's own credentials: no
// amount of waiting or other ports will help.
var errRefused = errors.New("credentials refused")

// mcWrite writes a binary request with no extras.
func mcWrite(w io.Writer, op byte, key, value []byte) error {
	h := make([]byte, 24, 24+len(key)+len(value))
	h[0], h[1] = mcRequest, op
	binary.BigEndian.PutUint16(h[2:], uint16(len(key)))
	binary.BigEndian.PutUint32(h[8:], uint32(len(key)+len(value)))
	_, err := w.Write(append(append(h, key...), value...))
	return err
}

// mcRead reads a binary response and returns its status, key and value.
func mcRead(r *bufio.Reader) (status uint16, key, value []byte, err error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, nil, err
	}
	if h[0] != mcResponse {
		return 0, nil, nil, fmt.Errorf("response magic %#x, want %#x", h[0], mcResponse)
	}
	keyLen := int(binary.BigEndian.Uint16(h[2:]))
	extLen := int(h[4])
	bodyLen := int(binary.BigEndian.Uint32(h[8:]))
	if keyLen+extLen > bodyLen || bodyLen > 1<<20 {
		return 0, nil, nil, fmt.Errorf("bad response lengths: key %d, extras %d, body %d", keyLen, extLen, bodyLen)
	}
	body := make([]byte, bodyLen)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, nil, err
	}
	return binary.BigEndian.Uint16(h[6:]), body[extLen : extLen+keyLen], body[extLen+keyLen:], nil
}

// saslPlain authenticates with the PLAIN mechanism (RFC 4616: authzid,
// authcid and password separated by NUL bytes).
func saslPlain(w io.Writer, r *bufio.Reader, user, pass string) error {
	if err := mcWrite(w, mcOpSASLAuth, []byte("PLAIN"), []byte("\x00"+user+"\x00"+pass)); err != nil {
		return err
	}
	status, _, value, err := mcRead(r)
	switch {
	case err != nil:
		return err
	case status == mcStatusAuthError:
		return fmt.Errorf("SASL PLAIN: %w (%s); is the PLAIN plugin (libsasl2-modules) installed?", errRefused, value)
	case status != mcStatusOK:
		return fmt.Errorf("SASL PLAIN: status %#04x: %s", status, value)
	}
	return nil
}

// binaryStatPID sends STAT and returns the "pid" of its replies, which end
// with an empty key.
func binaryStatPID(w net.Conn, r *bufio.Reader) (int, error) {
	if err := mcWrite(w, mcOpStat, nil, nil); err != nil {
		return 0, err
	}
	pid := 0
	for {
		status, key, value, err := mcRead(r)
		if err != nil {
			return 0, err
		}
		if status != mcStatusOK {
			return 0, fmt.Errorf("STAT: status %#04x: %s", status, value)
		}
		if len(key) == 0 {
			break
		}
		if string(key) == "pid" {
			pid, _ = strconv.Atoi(string(value))
		}
	}
	if pid == 0 {
		return 0, errors.New("STAT without a pid")
	}
	return pid, nil
}
