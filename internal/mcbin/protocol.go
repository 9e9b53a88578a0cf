package mcbin

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Wire constants of the binary protocol (memcached protocol_binary.h;
// doc/protocol-binary.xml §3).
const (
	magicRequest  = 0x80
	magicResponse = 0x81
	headerLen     = 24
	maxKeyLen     = 250 // memcached KEY_MAX_LENGTH
)

// Opcodes (doc/protocol-binary.xml §3.3).
const (
	opGet           = 0x00
	opSet           = 0x01
	opAdd           = 0x02
	opReplace       = 0x03
	opDelete        = 0x04
	opIncrement     = 0x05
	opDecrement     = 0x06
	opNoop          = 0x0a
	opVersion       = 0x0b
	opGetKQ         = 0x0d
	opSetQ          = 0x11
	opDeleteQ       = 0x14
	opTouch         = 0x1c
	opSASLListMechs = 0x20
	opSASLAuth      = 0x21
)

// header is a decoded response header.
type header struct {
	opcode  byte
	keyLen  uint16
	extLen  uint8
	status  Status
	bodyLen uint32
	opaque  uint32
	cas     uint64
}

// response is one reply. body holds extras, key and value, in that order;
// it is nil when the status is not StatusOK (the error text is discarded:
// it is the server's prose, never a value).
type response struct {
	header
	body []byte
}

func (r *response) extras() []byte { return r.body[:r.extLen] }
func (r *response) key() []byte    { return r.body[r.extLen : int(r.extLen)+int(r.keyLen)] }
func (r *response) value() []byte  { return r.body[int(r.extLen)+int(r.keyLen):] }

func protoErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, a...)...)
}

// readResponse reads one response from r, using hdr as scratch space. A body
// longer than maxBody, a wrong magic byte or lengths that do not add up are
// an error wrapping ErrProtocol, reported before anything is allocated; the
// stream is then out of step and the connection must be closed.
func readResponse(r *bufio.Reader, hdr *[headerLen]byte, maxBody int) (response, error) {
	var resp response
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return resp, err
	}
	h := &resp.header
	if hdr[0] != magicResponse {
		return resp, protoErr("magic 0x%02x, want 0x%02x", hdr[0], magicResponse)
	}
	h.opcode = hdr[1]
	h.keyLen = binary.BigEndian.Uint16(hdr[2:4])
	h.extLen = hdr[4]
	if hdr[5] != 0 {
		return resp, protoErr("data type 0x%02x, want 0x00 (raw bytes)", hdr[5])
	}
	h.status = Status(binary.BigEndian.Uint16(hdr[6:8]))
	h.bodyLen = binary.BigEndian.Uint32(hdr[8:12])
	h.opaque = binary.BigEndian.Uint32(hdr[12:16])
	h.cas = binary.BigEndian.Uint64(hdr[16:24])
	if uint64(h.bodyLen) > uint64(maxBody) {
		return resp, protoErr("body of %d bytes, more than the %d allowed", h.bodyLen, maxBody)
	}
	if uint32(h.extLen)+uint32(h.keyLen) > h.bodyLen {
		return resp, protoErr("extras (%d) and key (%d) longer than the body (%d)", h.extLen, h.keyLen, h.bodyLen)
	}
	if h.bodyLen == 0 {
		return resp, nil
	}
	if h.status != StatusOK {
		if _, err := r.Discard(int(h.bodyLen)); err != nil {
			return resp, unexpectedEOF(err)
		}
		return resp, nil
	}
	resp.body = make([]byte, h.bodyLen)
	if _, err := io.ReadFull(r, resp.body); err != nil {
		return resp, unexpectedEOF(err)
	}
	return resp, nil
}

// unexpectedEOF turns io.EOF inside a response into io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendHeader appends a request header to b.
func appendHeader(b []byte, opcode byte, keyLen, extLen, bodyLen int, opaque uint32, cas uint64) []byte {
	b = append(b, magicRequest, opcode)
	b = binary.BigEndian.AppendUint16(b, uint16(keyLen))
	b = append(b, byte(extLen), 0, 0, 0) // data type raw, vbucket 0
	b = binary.BigEndian.AppendUint32(b, uint32(bodyLen))
	b = binary.BigEndian.AppendUint32(b, opaque)
	return binary.BigEndian.AppendUint64(b, cas)
}

// multiReader reads the replies to a pipeline of n quiet requests with
// opaques base … base+n-1 and opcode op, terminated by a Noop with opaque
// base+n. The server answers in request order and a quiet request may not
// be answered at all (doc/protocol-binary.xml §4.2).
type multiReader struct {
	r       *bufio.Reader
	hdr     *[headerLen]byte
	maxBody int
	op      byte
	base    uint32
	n       int
	keys    []string // for GetKQ: the key requested under each opaque
}

// read calls fn for every reply until the Noop; an error from fn stops it
// and is returned. Any reply that is not the answer to a request of the
// pipeline, comes out of order, or carries another key than the one
// requested is an error wrapping ErrProtocol.
func (m *multiReader) read(fn func(i int, resp response) error) error {
	next := 0
	for {
		resp, err := readResponse(m.r, m.hdr, m.maxBody)
		if err != nil {
			return err
		}
		if resp.opcode == opNoop {
			if resp.opaque != m.base+uint32(m.n) || resp.status != StatusOK || resp.bodyLen != 0 {
				return protoErr("noop reply with opaque %d, status 0x%02x, body %d; want opaque %d, ok, empty", resp.opaque, uint16(resp.status), resp.bodyLen, m.base+uint32(m.n))
			}
			return nil
		}
		if resp.opcode != m.op {
			return protoErr("reply opcode 0x%02x inside a 0x%02x pipeline", resp.opcode, m.op)
		}
		// Opaques wrap around at 2^32; the offset from base does not.
		d := resp.opaque - m.base
		if d >= uint32(m.n) || int(d) < next {
			return protoErr("reply opaque %d outside the pipeline's remaining %d…%d", resp.opaque, m.base+uint32(next), m.base+uint32(m.n)-1)
		}
		i := int(d)
		if resp.status == StatusOK && m.keys != nil {
			if resp.extLen != 4 {
				return protoErr("get reply with %d bytes of extras, want 4", resp.extLen)
			}
			if string(resp.key()) != m.keys[i] {
				return protoErr("reply for opaque %d carries another key than requested", resp.opaque)
			}
		}
		next = i + 1
		if err := fn(i, resp); err != nil {
			return err
		}
	}
}
