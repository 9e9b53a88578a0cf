package pagecache

import (
	"net/http"
	"slices"
	"testing"
)

// The request headers the hit path reads, in any spelling, in one order
// whatever the map's.
func TestHitHeaders(t *testing.T) {
	for _, tc := range []struct {
		name     string
		h        http.Header
		auth     bool
		inm      []string
		dropped  http.Header // after dropConditional
		language []string    // headerValues(h, "Accept-Language")
	}{
		{name: "ok, canonical names", h: http.Header{"Authorization": {"a"}, "If-None-Match": {`"x"`}, "Accept-Language": {"en"}},
			auth: true, inm: []string{`"x"`}, language: []string{"en"}, dropped: http.Header{"Authorization": {"a"}, "Accept-Language": {"en"}}},
		{name: "ok, other spellings after the canonical one, in name order", h: http.Header{
			"If-None-Match": {`"a"`}, "if-none-match": {`"c"`}, "IF-NONE-MATCH": {`"b"`}, "accept-language": {"fr"}, "Accept-Language": {"en"}, "range": {"bytes=0-1"},
		}, inm: []string{`"a"`, `"b"`, `"c"`}, language: []string{"en", "fr"}, dropped: http.Header{"accept-language": {"fr"}, "Accept-Language": {"en"}}},
		{name: "nok, authorization in lower case is heard", h: http.Header{"authorization": {"Bearer x"}, "Cookie": {"a=1"}},
			auth: true, dropped: http.Header{"authorization": {"Bearer x"}, "Cookie": {"a=1"}}},
		{name: "ok, an empty value is no header", h: http.Header{"authorization": {}}, dropped: http.Header{"authorization": {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 10 { // map order varies between runs
				auth, inm := hitHeaders(tc.h)
				if auth != tc.auth || !slices.Equal(inm, tc.inm) {
					t.Fatalf("hitHeaders = %v, %q; want %v, %q", auth, inm, tc.auth, tc.inm)
				}
				if got, _ := headerValues(tc.h, "Accept-Language"); !slices.Equal(got, tc.language) {
					t.Fatalf("headerValues(Accept-Language) = %q; want %q", got, tc.language)
				}
			}
			h := tc.h.Clone()
			dropConditional(h)
			if len(h) != len(tc.dropped) {
				t.Fatalf("after dropConditional: %v; want %v", h, tc.dropped)
			}
			for k := range tc.dropped {
				if _, ok := h[k]; !ok {
					t.Fatalf("after dropConditional: %v; want %v", h, tc.dropped)
				}
			}
		})
	}
}
