package echocache_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/stores"
)

type codecSample struct {
	ID      int64
	Name    string
	Raw     []byte
	When    time.Time
	Scores  map[string]float64
	Next    *codecSample
	Missing *codecSample
	List    []int
}

func TestCodecsRoundTrip(t *testing.T) {
	want := codecSample{
		ID: -5, Name: "ünïcode\x00", Raw: []byte{0, 255},
		When:   time.Date(2024, 1, 2, 3, 4, 5, 987654321, time.FixedZone("", -7*3600)),
		Scores: map[string]float64{"a": 1.5, "b": -0.25},
		Next:   &codecSample{ID: 2, List: []int{1, 2, 3}},
	}
	for _, tc := range []struct {
		name  string
		codec echocache.Codec
	}{
		{"default", echocache.DefaultCodec},
		{"cbor", echocache.CBORCodec{}},
		{"json", echocache.JSONCodec{}},
		{"gob", echocache.GobCodec{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := tc.codec.Marshal(want)
			require.NoError(t, err)
			var got codecSample
			require.NoError(t, tc.codec.Unmarshal(data, &got))
			assert.True(t, want.When.Equal(got.When), "time %v came back as %v", want.When, got.When)
			_, wantOff := want.When.Zone()
			_, gotOff := got.When.Zone()
			assert.Equal(t, wantOff, gotOff, "zone offset")
			got.When = want.When
			assert.Equal(t, want, got)
		})
	}
}

func TestCBORRefusesMalformedInput(t *testing.T) {
	for name, data := range map[string][]byte{
		"array claiming 2^64 elements": []byte("\x9b\xff\xff\xff\xff\xff\xff\xff\xff"),
		"map claiming 2^32 pairs":      []byte("\xba\xff\xff\xff\xff"),
		"string longer than the data":  []byte("\x7a\x00\x10\x00\x00abc"),
		"nesting beyond the limit":     []byte(strings.Repeat("\x81", 5000)),
		"truncated":                    []byte("\xa2\x62ID"),
		"trailing bytes":               []byte("\x01\x02"),
	} {
		var v any
		assert.Error(t, echocache.CBORCodec{}.Unmarshal(data, &v), name)
	}
	// A large legitimate value is not refused by the decoder's limits.
	big := make([]int, 200_000)
	data, err := echocache.CBORCodec{}.Marshal(big)
	require.NoError(t, err)
	var got []int
	require.NoError(t, echocache.CBORCodec{}.Unmarshal(data, &got))
	assert.Len(t, got, len(big))
}

// Config.Codec replaces the default; an entry written with another codec is
// a miss, not a panic.
func TestConfigCodec(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "memory://")
	cj := newTestCache(t, s, echocache.Config{Codec: echocache.JSONCodec{}})
	cc := newTestCache(t, s, echocache.Config{})

	require.NoError(t, echocache.Set(ctx, cj, "j", codecSample{ID: 1, Name: "json"}, time.Hour))
	raw, err := s.Get(ctx, "v:j")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(raw), "ECV\x01"+`V{"ID":1,"Name":"json"`), "stored as JSON in a value record: %q", raw)
	got, err := echocache.Get[codecSample](ctx, cj, "j")
	require.NoError(t, err)
	assert.Equal(t, "json", got.Name)

	require.NoError(t, echocache.Set(ctx, cc, "c", codecSample{ID: 2}, time.Hour))
	_, err = echocache.Get[codecSample](ctx, cj, "c")
	require.ErrorIs(t, err, echocache.ErrNotFound, "CBOR entry read with the JSON codec")
	_, err = s.Get(ctx, "v:c")
	require.ErrorIs(t, err, stores.ErrNotFound, "undecodable entry dropped")
}
