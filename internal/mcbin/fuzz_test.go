package mcbin

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// Replies captured from memcached 1.6.18 (plain and -S); the requests'
// opaques are given with each.
var (
	seedSetGetHit = []byte("\x81\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01" +
		"\x81\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\t\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00*value")
	seedGetMiss     = []byte("\x81\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\t\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00Not found")
	seedIncr        = []byte("\x81\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\b\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x05")
	seedNonNumeric  = []byte("\x81\x05\x00\x00\x00\x00\x00\x06\x00\x00\x00.\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00Non-numeric server-side value for incr or decr")
	seedVersion     = []byte("\x81\v\x00\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00\x001.6.18")
	seedTooLarge    = []byte("\x81\x01\x00\x00\x00\x00\x00\x03\x00\x00\x00\n\x00\x00\x00\a\x00\x00\x00\x00\x00\x00\x00\x00Too large.")
	seedAddExists   = []byte("\x81\x02\x00\x00\x00\x00\x00\x02\x00\x00\x00\x14\x00\x00\x00\b\x00\x00\x00\x00\x00\x00\x00\x00Data exists for key.")
	seedSASLRefused = []byte("\x81!\x00\x00\x00\x00\x00 \x00\x00\x00\r\x00\x00\x00\t\x00\x00\x00\x00\x00\x00\x00\x00Auth failure." +
		"\x81 \x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\n\x00\x00\x00\x00\x00\x00\x00\x00PLAIN")
	// GetKQ "seed" (opaque 10, a hit), GetKQ "seed-absent" (11, a miss:
	// no reply), Noop (12).
	seedGetKQ = []byte("\x81\r\x00\x04\x04\x00\x00\x00\x00\x00\x00\r\x00\x00\x00\n\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00*seedvalue" +
		"\x81\n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\f\x00\x00\x00\x00\x00\x00\x00\x00")
)

const fuzzMaxBody = 4096

// FuzzReadResponse feeds arbitrary bytes to the reply parser: it must never
// panic, never accept a body over its bound, and every reply it accepts
// must account for each byte of its body.
func FuzzReadResponse(f *testing.F) {
	for _, s := range [][]byte{seedSetGetHit, seedGetMiss, seedIncr, seedNonNumeric, seedVersion, seedTooLarge, seedAddExists, seedSASLRefused, seedGetKQ, {}, seedGetMiss[:10]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		var hdr [headerLen]byte
		consumed := 0
		for range 16 {
			resp, err := readResponse(br, &hdr, fuzzMaxBody)
			if err != nil {
				if !errors.Is(err, ErrProtocol) && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("readResponse error %v; want ErrProtocol, io.EOF or io.ErrUnexpectedEOF", err)
				}
				return
			}
			if resp.bodyLen > fuzzMaxBody {
				t.Fatalf("accepted a body of %d bytes over the bound %d", resp.bodyLen, fuzzMaxBody)
			}
			if resp.status == StatusOK && resp.bodyLen > 0 {
				if n := len(resp.extras()) + len(resp.key()) + len(resp.value()); n != int(resp.bodyLen) {
					t.Fatalf("extras+key+value = %d bytes; body length %d", n, resp.bodyLen)
				}
			}
			if resp.status != StatusOK && resp.body != nil {
				t.Fatalf("an error answer (status %v) kept its text as a body", resp.status)
			}
			consumed += headerLen + int(resp.bodyLen)
			if consumed > len(data) {
				t.Fatalf("parsed %d bytes out of %d", consumed, len(data))
			}
		}
	})
}

// FuzzGetMultiReplies feeds arbitrary bytes to the GetKQ pipeline reader:
// it must never panic, report only keys it asked for, under their own
// index, in order, and succeed only on the batch's own Noop.
func FuzzGetMultiReplies(f *testing.F) {
	f.Add("seed\nseed-absent", uint32(10), seedGetKQ)
	f.Add("seed", uint32(10), seedGetKQ)                      // Noop opaque off by one
	f.Add("other\nseed-absent", uint32(10), seedGetKQ)        // another key under opaque 10
	f.Add("seed\nseed-absent", uint32(0xffffffff), seedGetKQ) // opaques wrapping
	f.Add("a\nb\nc", uint32(1), seedSetGetHit)
	f.Add("k", uint32(11), seedSASLRefused)
	f.Fuzz(func(t *testing.T, keyList string, base uint32, data []byte) {
		keys := strings.Split(keyList, "\n")
		if len(keys) > 64 {
			keys = keys[:64]
		}
		br := bufio.NewReader(bytes.NewReader(data))
		var hdr [headerLen]byte
		m := multiReader{r: br, hdr: &hdr, maxBody: fuzzMaxBody, op: opGetKQ, base: base, n: len(keys), keys: keys}
		last := -1
		var noopSeen bool
		err := m.read(func(i int, resp response) error {
			if i <= last || i >= len(keys) {
				t.Fatalf("reply for index %d after %d, of %d keys", i, last, len(keys))
			}
			last = i
			if resp.opaque != base+uint32(i) {
				t.Fatalf("index %d from opaque %d; base %d", i, resp.opaque, base)
			}
			if resp.status == StatusOK && string(resp.key()) != keys[i] {
				t.Fatalf("hit for index %d carries key %q; asked for %q", i, resp.key(), keys[i])
			}
			return nil
		})
		if err == nil {
			noopSeen = true
		}
		if noopSeen && !bytes.Contains(data, []byte{magicResponse, opNoop}) {
			t.Fatalf("succeeded without a Noop reply in the stream")
		}
	})
}
