package pagecache

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/internal/record"
)

func sampleEntry() *entryData {
	return &entryData{
		nonce:      0xdeadbeefcafe,
		key:        []byte("r:u/zen?a=1\x00deadbeefcafe\x00http://example.com\x00Accept-Language:2:en"),
		storedAt:   1_700_000_000_000_000_000,
		freshUntil: 1_700_000_300_000_000_000,
		swrUntil:   1_700_000_360_000_000_000,
		sieUntil:   1_700_000_900_000_000_000,
		status:     200,
		vary:       []string{"Accept-Language"},
		tags:       []tagVersion{{"news", 7}, {"sport", 1 << 60}},
		header: http.Header{
			"Content-Type": {"text/html; charset=UTF-8"},
			"Link":         {"</a.css>; rel=preload", "</b.js>; rel=preload"},
			"Etag":         {`"abc"`},
			"X-Empty":      {""},
		},
		body: []byte("<p>the zen of python</p>\x00binary\xff"),
	}
}

func TestEntryRoundTrip(t *testing.T) {
	d := sampleEntry()
	raw := encodeEntry(d)
	e, err := decodeEntry(raw, true)
	require.NoError(t, err)
	assert.Equal(t, d.nonce, e.nonce)
	assert.Equal(t, d.key, e.key)
	assert.Equal(t, d.storedAt, e.storedAt)
	assert.Equal(t, d.freshUntil, e.freshUntil)
	assert.Equal(t, d.swrUntil, e.swrUntil)
	assert.Equal(t, d.sieUntil, e.sieUntil)
	assert.Equal(t, d.status, e.status)
	assert.Equal(t, d.vary, e.varyNames())
	assert.Equal(t, d.tags, e.tagVersions())
	assert.Equal(t, d.body, e.body)
	assert.Equal(t, `"abc"`, e.etag())
	h := http.Header{"X-Outer": {"kept"}}
	e.applyHeaders(h, make([]string, e.nVals), nil)
	want := d.header.Clone()
	want["X-Outer"] = []string{"kept"}
	assert.Equal(t, want, h)
	// Each response gets values of its own.
	h["Content-Type"][0] = "changed"
	again := http.Header{}
	e.applyHeaders(again, make([]string, e.nVals), nil)
	assert.Equal(t, d.header["Content-Type"], again["Content-Type"], "nok, a response changing a value in place changed the entry")
	assert.Equal(t, raw, encodeEntry(d), "encoding is deterministic")

	shared, err := decodeEntry(raw, false)
	require.NoError(t, err)
	assert.Equal(t, e, shared, "the unverified decode finds the same fields")

	empty, err := decodeEntry(encodeEntry(&entryData{status: 204, header: http.Header{}}), true)
	require.NoError(t, err)
	assert.Empty(t, empty.body)
	assert.Nil(t, empty.varyNames())
}

// Every truncation and every flipped bit of a valid entry fails to decode.
func TestEntryDamage(t *testing.T) {
	raw := encodeEntry(sampleEntry())
	for n := range len(raw) {
		_, err := decodeEntry(raw[:n], true)
		require.Error(t, err, "truncated to %d of %d bytes", n, len(raw))
	}
	_, err := decodeEntry(append(raw[:len(raw):len(raw)], 0), true)
	require.Error(t, err, "a byte too many")
	for i := range raw {
		for bit := range 8 {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			_, err := decodeEntry(b, true)
			require.Error(t, err, "bit %d of byte %d flipped", bit, i)
		}
	}
}

// Records with a correct checksum but a broken structure are refused too.
func TestEntryStructure(t *testing.T) {
	valid := encodeEntry(sampleEntry())
	body := valid[:len(valid)-4]
	tests := []struct {
		name string
		b    []byte
	}{
		{"nok, status out of range", func() []byte {
			b := append([]byte(nil), body...)
			binary.LittleEndian.PutUint16(b[44:], 42)
			return b
		}()},
		{"nok, stale window before freshness", func() []byte {
			b := append([]byte(nil), body...)
			binary.LittleEndian.PutUint64(b[28:], 1)
			return b
		}()},
		{"nok, a key length past the end", append(append([]byte(nil), body[:entryFixed]...), 0xff, 0xff, 0x03, 0, 0, 0, 0, 0)},
		{"nok, a huge list count", append(append([]byte(nil), body[:entryFixed]...), 0, 0xff, 0xff, 0xff, 0xff, 0x0f)},
		{"nok, trailing bytes after the body", append(append([]byte(nil), body...), 1, 2, 3)},
		{"nok, a header name with a colon", encodeBroken(func(d *entryData) { d.header = http.Header{"Bad:Name": {"v"}} })},
		{"nok, a header value with a newline", encodeBroken(func(d *entryData) { d.header = http.Header{"X": {"a\r\nSet-Cookie: x"}} })},
		{"nok, an empty vary name", encodeBroken(func(d *entryData) { d.vary = []string{""} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeEntry(withCRC(tt.b), true)
			assert.ErrorIs(t, err, errEntryCorrupt)
		})
	}
}

// encodeBroken encodes a sample entry changed by f; the checksum is right.
func encodeBroken(f func(*entryData)) []byte {
	d := sampleEntry()
	f(d)
	raw := encodeEntry(d)
	return raw[:len(raw)-4]
}

// withCRC completes a record body: it sets the record length (when b is
// long enough to hold it) and appends the checksum, so that decoding
// reaches the structure checks.
func withCRC(b []byte) []byte {
	b = append([]byte(nil), b...)
	if len(b) >= entryFixed {
		binary.LittleEndian.PutUint32(b[54:], uint32(len(b)+4))
	}
	return binary.LittleEndian.AppendUint32(b, record.Checksum(b))
}

// FuzzDecodeEntry: arbitrary bytes, as they are and with a correct checksum
// (so that the structure checks are reached), verified or not, never panic,
// and what decodes can be served.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry(sampleEntry()))
	f.Add(encodeEntry(&entryData{status: 200, header: http.Header{}}))
	f.Add([]byte("ECR\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range [][]byte{data, withCRC(data)} {
			for _, verify := range []bool{true, false} {
				e, err := decodeEntry(b, verify)
				if err != nil {
					continue
				}
				if e.status < 100 || e.status > 999 || len(e.body) > len(b) || e.nVals > len(b) {
					t.Fatalf("decoded an impossible entry: status %d, body %d, %d values, of %d bytes", e.status, len(e.body), e.nVals, len(b))
				}
				h := http.Header{}
				e.applyHeaders(h, make([]string, e.nVals), nil)
				if verify {
					// Every value of a verified entry is in exactly one
					// header, with a valid name and value.
					n := 0
					for _, f := range e.fields {
						if !validHeaderName([]byte(f.name)) {
							t.Fatalf("verified entry has header name %q", f.name)
						}
						for _, v := range e.vals[f.lo:f.hi] {
							if !validHeaderValue([]byte(v)) {
								t.Fatalf("verified entry has header value %q", v)
							}
						}
						n += f.hi - f.lo
					}
					if n != e.nVals {
						t.Fatalf("the headers of a verified entry hold %d of its %d values", n, e.nVals)
					}
				}
				_ = e.etag()
				_ = e.varyNames()
				_ = e.tagVersions()
			}
		}
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzDecodeEntry when
// ECHOCACHE_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("ECHOCACHE_WRITE_CORPUS") != "1" {
		t.Skip("set ECHOCACHE_WRITE_CORPUS=1 to regenerate the fuzz corpus")
	}
	valid := encodeEntry(sampleEntry())
	inputs := map[string][]byte{
		"valid":                 valid,
		"valid-minimal":         encodeEntry(&entryData{status: 200, header: http.Header{}}),
		"truncated-half":        valid[:len(valid)/2],
		"truncated-crc":         valid[:len(valid)-1],
		"magic-only":            []byte("ECR\x01"),
		"wrong-version":         append([]byte("ECR\x02"), valid[4:]...),
		"gob-like":              []byte("\x1f\xff\x81\x03\x01\x01\x05Entry\x01\xff\x82\x00\x01\x02"),
		"huge-key-length":       withCRC(append(append([]byte(nil), valid[:entryFixed]...), 0xff, 0xff, 0xff, 0xff, 0x0f)),
		"huge-header-count":     withCRC(append(append([]byte(nil), valid[:entryFixed]...), 0, 0, 0, 0xff, 0xff, 0x7f)),
		"uvarint-overflow":      withCRC(append(append([]byte(nil), valid[:entryFixed]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)),
		"header-injection":      withCRC(encodeBroken(func(d *entryData) { d.header = http.Header{"X": {"a\r\nSet-Cookie: x"}} })),
		"bad-status-crc-ok":     withCRC(append(append([]byte(nil), valid[:44]...), append([]byte{0, 0}, valid[46:len(valid)-4]...)...)),
		"trailing-bytes-crc-ok": withCRC(append(append([]byte(nil), valid[:len(valid)-4]...), 9, 9)),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeEntry")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, b := range inputs {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
}
