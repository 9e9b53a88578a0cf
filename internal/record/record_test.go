package record

import (
	"bytes"
	"errors"
	"testing"
)

func TestOpen(t *testing.T) {
	good := Seal(append(Begin(nil, Value, 1), "payload"...))
	flip := bytes.Clone(good)
	flip[5] ^= 1
	tests := []struct {
		name   string
		rec    []byte
		kind   Kind
		verify bool
		want   error
	}{
		{"ok, whole record", good, Value, true, nil},
		{"ok, unverified", flip, Value, false, nil},
		{"nok, flipped bit", flip, Value, true, ErrChecksum},
		{"nok, other kind", good, Page, true, ErrKind},
		{"nok, other version", Seal(append(Begin(nil, Value, 2), "p"...)), Value, true, ErrVersion},
		{"nok, truncated", good[:len(good)-1], Value, true, ErrChecksum},
		{"nok, too short", good[:7], Value, true, ErrShort},
		{"nok, not a record", []byte("<html>hello</html>"), Fragment, true, ErrKind},
		{"nok, empty", nil, Value, false, ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Open(tt.rec, tt.kind, 1, tt.verify)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open(%q) error = %v; want %v", tt.rec, err, tt.want)
			}
			if err == nil && string(p) != "payload" && !bytes.Equal(tt.rec, flip) {
				t.Errorf("Open(%q) = %q; want %q", tt.rec, p, "payload")
			}
		})
	}
}

// FuzzOpen: Open never panics, and a record that opens verified is one
// Seal wrote.
func FuzzOpen(f *testing.F) {
	f.Add(Seal(append(Begin(nil, Value, 1), "x"...)), true)
	f.Add([]byte("EC"), false)
	f.Fuzz(func(t *testing.T, b []byte, verify bool) {
		p, err := Open(b, Value, 1, verify)
		if err == nil && verify {
			again := Seal(append(Begin(nil, Value, 1), p...))
			if !bytes.Equal(again, b) {
				t.Fatalf("Open(%q) opened a record Seal would write as %q", b, again)
			}
		}
	})
}
