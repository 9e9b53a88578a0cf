package stores

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
	"time"
)

func TestManifestRoundTrip(t *testing.T) {
	mf := manifest{length: 3<<20 + 5, chunks: 4, size: 1<<20 - 512, sum: 0x0123456789abcdef}
	copy(mf.id[:], "0123456789abcdef")
	got, ok := decodeManifest(mf.encode(), 32<<20, 1<<20-512)
	if !ok || got != mf {
		t.Fatalf("decodeManifest(encode(%+v)) = %+v, %v; want it back", mf, got, ok)
	}
}

func TestDecodeManifestRejects(t *testing.T) {
	good := manifest{length: 10, chunks: 3, size: 4, sum: 1}
	enc := func(f func(b []byte)) []byte {
		b := good.encode()
		f(b)
		return b
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"nok, empty", nil},
		{"nok, short", good.encode()[:manifestLen-1]},
		{"nok, long", append(good.encode(), 0)},
		{"nok, magic", enc(func(b []byte) { b[0] = '1' })},
		{"nok, version", enc(func(b []byte) { b[1] = 2 })},
		{"nok, longer than the largest value", enc(func(b []byte) { binary.LittleEndian.PutUint64(b[2:], 1<<40) })},
		{"nok, chunk count does not fit the length", enc(func(b []byte) { binary.LittleEndian.PutUint32(b[10:], 2) })},
		{"nok, no chunks", enc(func(b []byte) { binary.LittleEndian.PutUint32(b[10:], 0); binary.LittleEndian.PutUint64(b[2:], 0) })},
		{"nok, chunk size zero", enc(func(b []byte) { binary.LittleEndian.PutUint32(b[14:], 0) })},
		{"nok, chunk larger than an item", enc(func(b []byte) { binary.LittleEndian.PutUint32(b[14:], 1<<30) })},
		{"nok, too many chunks", enc(func(b []byte) {
			binary.LittleEndian.PutUint64(b[2:], 2000)
			binary.LittleEndian.PutUint32(b[10:], 2000)
			binary.LittleEndian.PutUint32(b[14:], 1)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if mf, ok := decodeManifest(tt.b, 1<<20, 1<<10); ok {
				t.Errorf("decodeManifest(%x) = %+v, true; want it refused", tt.b, mf)
			}
		})
	}
	if _, ok := decodeManifest(good.encode(), 1<<20, 1<<10); !ok {
		t.Error("decodeManifest refused a good manifest")
	}
}

// FuzzDecodeManifest feeds arbitrary bytes to the manifest parser: it never
// panics, and a manifest it accepts describes chunks that add up to the
// length, within the bounds it was given.
func FuzzDecodeManifest(f *testing.F) {
	good := manifest{length: 3<<20 + 5, chunks: 4, size: 1<<20 - 512, sum: 7}
	f.Add(good.encode())
	f.Add([]byte("E\x01"))
	f.Add(bytes.Repeat([]byte{0xff}, manifestLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxValue, maxChunk = 32 << 20, 1<<20 - 512
		mf, ok := decodeManifest(b, maxValue, maxChunk)
		if !ok {
			return
		}
		if mf.length > maxValue || mf.size == 0 || mf.size > maxChunk || mf.chunks > maxMemcachedChunks {
			t.Fatalf("accepted %+v outside the bounds", mf)
		}
		last := int64(mf.length) - int64(mf.chunks-1)*int64(mf.size)
		if last < 1 || last > int64(mf.size) {
			t.Fatalf("accepted %+v: its last chunk would hold %d bytes", mf, last)
		}
		if !bytes.Equal(mf.encode(), b) {
			t.Fatalf("accepted %x, which encodes back as %x", b, mf.encode())
		}
	})
}

func TestExpiryFlags(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name     string
		exp      uint32
		flags    uint32
		keepNow  time.Time
		wantKeep uint32
	}{
		{"ok, no expiry", 0, 0, now, 0},
		{"ok, relative", 60, 1_800_000_060, now.Add(10 * time.Second), 50},
		{"ok, about to expire", 60, 1_800_000_060, now.Add(60 * time.Second), 1},
		{"ok, expired", 60, 1_800_000_060, now.Add(time.Hour), 1},
		{"ok, 30 days", memcachedRelativeLimit, 1_800_000_000 + memcachedRelativeLimit, now, memcachedRelativeLimit},
		{"ok, absolute", 1_900_000_000, 1_900_000_000, now, 1_900_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expiryFlags(tt.exp, now); got != tt.flags {
				t.Fatalf("expiryFlags(%d) = %d; want %d", tt.exp, got, tt.flags)
			}
			if got := keepExpiration(tt.flags|mcManifestFlag, tt.keepNow); got != tt.wantKeep {
				t.Errorf("keepExpiration(%d) at +%v = %d; want %d", tt.flags, tt.keepNow.Sub(now), got, tt.wantKeep)
			}
		})
	}
}

func TestDedupe(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{nil, nil},
		{[]string{"a"}, []string{"a"}},
		{[]string{"a", "b"}, []string{"a", "b"}},
		{[]string{"a", "b", "a", "c", "b"}, []string{"a", "b", "c"}},
	} {
		if got := dedupe(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("dedupe(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestGenKeyPerServer(t *testing.T) {
	a, b := genKey("app:", "10.0.0.1:11211"), genKey("app:", "10.0.0.2:11211")
	if a == b || len(a) != len("app:gen@")+16 || !legalMemcachedKey(a) {
		t.Errorf("genKey = %q, %q; want two legal keys of prefix, gen@ and 16 hex digits", a, b)
	}
}
