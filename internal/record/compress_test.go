package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/s2"
)

// page returns a record of n bytes whose payload is text that compresses
// (about 4×, like HTML) without being a single repeated pattern.
func page(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "<tr id=\"row-%d\"><td>%x</td><td class=\"price\">%d.%02d</td></tr>\n", i, i*2654435761, i*37%1000, i%100)
	}
	return Seal(append(Begin(nil, Page, 1), b.Bytes()[:n-Overhead]...))
}

// forge returns a compressed record, with a valid checksum, around the S2
// block z.
func forge(z []byte) []byte {
	return Seal(append(Begin(nil, Compressed, compressedVersion), z...))
}

func TestCompressRoundTrip(t *testing.T) {
	noise := make([]byte, 8<<10)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(noise)
	incompressible := Seal(append(Begin(nil, Value, 1), noise...))
	tests := []struct {
		name       string
		rec        []byte
		compressed bool
	}{
		{"ok, a 64 KiB page", page(64 << 10), true},
		{"ok, a 4 KiB page", page(4 << 10), true},
		{"ok, incompressible bytes stay as they are", incompressible, false},
		{"ok, a tiny record stays as it is", Seal(append(Begin(nil, Value, 1), "x"...)), false},
		{"ok, bytes that are not a record stay as they are", bytes.Repeat([]byte("<td>echocache</td>"), 1000), false},
		{"ok, a compressed record stays as it is", Compress(page(64 << 10)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := Compress(tt.rec)
			if got := Is(z, Compressed); got != tt.compressed {
				t.Fatalf("Compress(%d bytes) is compressed = %v; want %v", len(tt.rec), got, tt.compressed)
			}
			if Is(tt.rec, Compressed) {
				if !bytes.Equal(z, tt.rec) {
					t.Fatalf("Compress of a compressed record changed it")
				}
				return
			}
			if tt.compressed && len(z) > len(tt.rec)/2 {
				t.Errorf("Compress(%d bytes) = %d bytes; want at most half", len(tt.rec), len(z))
			}
			got, err := Decompress(z, len(tt.rec))
			if err != nil || !bytes.Equal(got, tt.rec) {
				t.Fatalf("Decompress(Compress(rec)) = %d bytes, %v; want rec (%d bytes)", len(got), err, len(tt.rec))
			}
		})
	}
}

func TestDecompressRefuses(t *testing.T) {
	rec := page(64 << 10)
	z := Compress(rec)
	flip := bytes.Clone(z)
	flip[len(flip)/2] ^= 1
	// A forged block declaring 1 GiB in a few bytes: its S2 header (the
	// uvarint of the decoded length) followed by nothing.
	bomb := forge(binary.AppendUvarint(nil, 1<<30))
	// A real block of a megabyte of zeros: 50 bytes that expand 20000×.
	zeros := forge(s2.Encode(nil, append(Begin(nil, Page, 1), make([]byte, 1<<20)...)))
	// A block that decodes to something other than a record.
	notRecord := forge(s2.Encode(nil, bytes.Repeat([]byte("<html>"), 100)))
	// A compressed record inside a compressed record.
	nested := forge(s2.Encode(nil, z))
	// A block that declares more bytes than it holds (a truncated body).
	short := s2.Encode(nil, rec)
	short = forge(short[:len(short)-100])
	tests := []struct {
		name  string
		rec   []byte
		limit int
		want  error
	}{
		{"nok, flipped bit", flip, len(rec), ErrChecksum},
		{"nok, truncated", z[:len(z)-1], len(rec), ErrChecksum},
		{"nok, header only", z[:HeaderLen], len(rec), ErrShort},
		{"nok, other version", Seal(append(Begin(nil, Compressed, 9), z[HeaderLen:len(z)-TrailerLen]...)), len(rec), ErrVersion},
		{"nok, one byte over the limit", z, len(rec) - 1, ErrExpands},
		{"nok, declares a gigabyte", bomb, 32 << 20, ErrExpands},
		{"nok, expands 20000× past the limit", zeros, 512 << 10, ErrExpands},
		{"nok, declares more than it holds", short, len(rec), ErrCompressed},
		{"nok, not a record inside", notRecord, 1 << 20, ErrCompressed},
		{"nok, compressed twice", nested, 1 << 20, ErrCompressed},
		{"nok, empty block", forge(nil), 1 << 20, ErrCompressed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decompress(tt.rec, tt.limit)
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("Decompress(%d bytes, %d) = %d bytes, %v; want nil, %v", len(tt.rec), tt.limit, len(got), err, tt.want)
			}
		})
	}
}

// TestDecompressPlain: a record that is not compressed comes back as it
// is, whatever it holds: its own reader judges it.
func TestDecompressPlain(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("42"), []byte("EC"), page(8 << 10), []byte("ECZ")} {
		got, err := Decompress(b, 0)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("Decompress(%q) = %q, %v; want it back, nil", b, got, err)
		}
	}
}

// FuzzDecompress: Decompress never panics, never returns more than its
// limit, and what it returns from a compressed record is what S2 decodes
// from it, whole, and a record of another kind. With seal the input is an
// S2 block wrapped in a compressed record with a valid checksum, so that
// the fuzzer explores the decoder rather than the checksum.
func FuzzDecompress(f *testing.F) {
	// Small seeds: the fuzzer minimises every new input it keeps, which
	// takes long on large ones.
	z := Compress(page(1 << 10))
	f.Add(z, 1<<20, false)
	f.Add(z[HeaderLen:len(z)-TrailerLen], 1<<20, true)
	f.Add(z, len(z), false)
	f.Add(binary.AppendUvarint(nil, 1<<30), 1<<20, true)
	f.Add(s2.Encode(nil, append(Begin(nil, Page, 1), make([]byte, 4096)...)), 1<<20, true)
	f.Add([]byte("ECZ\x01"), 100, false)
	f.Fuzz(func(t *testing.T, b []byte, limit int, seal bool) {
		limit = min(max(limit, 0), 64<<10) // bounded, so the fuzzer cannot ask for the gigabytes it forges
		if seal {
			b = forge(b)
		}
		got, err := Decompress(b, limit)
		if !Is(b, Compressed) {
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("Decompress(%q) of a record not compressed = %q, %v; want it back", b, got, err)
			}
			return
		}
		if err != nil {
			if got != nil {
				t.Fatalf("Decompress(%q) = %q with error %v; want nil", b, got, err)
			}
			return
		}
		if len(got) > limit || len(got) < Overhead || !bytes.Equal(got[:2], []byte(Magic)) || Is(got, Compressed) {
			t.Fatalf("Decompress(%q, %d) = %q; want a record of another kind of at most %d bytes", b, limit, got, limit)
		}
		want, _ := s2.Decode(nil, b[HeaderLen:len(b)-TrailerLen])
		if !bytes.Equal(got, want) {
			t.Fatalf("Decompress(%q) = %q; S2 decodes %q", b, got, want)
		}
	})
}
