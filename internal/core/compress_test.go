package core

import (
	"bytes"
	"context"
	"maps"
	"testing"
	"time"

	"github.com/echocache/echocache/internal/record"
	"github.com/echocache/echocache/stores"
)

// TestCompressAll: SetMany's items are compressed into a new map, the
// caller's map is left as it was, a page's two records that share their
// bytes are compressed once, and values that are not records, or small,
// or empty, are kept as they are; the file store (networked, as far as
// the Cache can tell) reads them all back.
func TestCompressAll(t *testing.T) {
	page := record.Seal(append(record.Begin(nil, record.Page, 1), bytes.Repeat([]byte("<td>echocache</td>\n"), 1000)...))
	notRecord := bytes.Repeat([]byte("<td>echocache</td>\n"), 1000)
	items := func() map[string][]byte {
		return map[string][]byte{"page": page, "variant": page, "raw": notRecord, "counter": []byte("42"), "empty": {}}
	}
	for _, tt := range []struct {
		name       string
		min        int
		compressed bool
	}{{"ok, default threshold", 0, true}, {"ok, off", -1, false}} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := stores.NewFile(stores.FileConfig{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var c Cache
			c.Configure(Config{CompressMinSize: tt.min})
			c.Init(s)
			in := items()
			before := maps.Clone(in)
			out := c.compressAll(in)
			for k, v := range before {
				if !same(in[k], v) {
					t.Errorf("compressAll changed the caller's %q", k)
				}
			}
			if got := record.Is(out["page"], record.Compressed); got != tt.compressed {
				t.Fatalf("compressAll: page compressed = %v; want %v", got, tt.compressed)
			}
			if !same(out["page"], out["variant"]) {
				t.Errorf("compressAll compressed the same bytes twice")
			}
			for _, k := range []string{"raw", "counter", "empty"} {
				if !bytes.Equal(out[k], in[k]) || out[k] == nil {
					t.Errorf("compressAll: %q = %q; want it as it was", k, out[k])
				}
			}
			ctx := context.Background()
			if err := c.SetMany(ctx, in, time.Minute); err != nil {
				t.Fatal(err)
			}
			got, err := c.GetMany(ctx, []string{"page", "variant", "raw", "counter", "empty"})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range items() {
				if !bytes.Equal(got[k], v) {
					t.Errorf("GetMany: %q = %d bytes; want the %d written", k, len(got[k]), len(v))
				}
			}
			raw, err := s.Get(ctx, "variant")
			if err != nil || record.Is(raw, record.Compressed) != tt.compressed {
				t.Errorf("the file store holds %d bytes, compressed = %v, %v; want compressed = %v", len(raw), record.Is(raw, record.Compressed), err, tt.compressed)
			}
		})
	}
}
