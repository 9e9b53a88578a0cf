package pongotag_test

import (
	"strings"
	"testing"

	"github.com/echocache/echocache/pongotag"
)

// FuzzRewrite: Rewrite never panics, keeps every byte's position (so that
// pongo2's line and column numbers are those of the source), and changes
// only the < of a "<%" into { and the > of a "%>" into }.
func FuzzRewrite(f *testing.F) {
	for _, seed := range []string{
		`<% cache 30 %>x<% endcache %>`, `<%- cache "5m" "side" user.ID, lang -%>`,
		`<% cache 30 "a%>b" %>`, "<% cache 30\n%>", `{% verbatim %}<% cache 30 %>{% endverbatim %}`,
		`<script><% if (x) { %><%= x %><% } %></script>`, `{# <% cache 30 %> #}`, `{{ "<% cache" }}`,
		`x<%`, `<% cache 'x\'%>' %>`, `{% verbatim %}`, `{#`, `{{`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		out := pongotag.Rewrite(src)
		if len(out) != len(src) {
			t.Fatalf("Rewrite(%q) = %q: length %d, want %d", src, out, len(out), len(src))
		}
		for i := range len(src) {
			if out[i] == src[i] {
				continue
			}
			switch {
			case src[i] == '<' && out[i] == '{' && strings.HasPrefix(src[i:], "<%"):
			case src[i] == '>' && out[i] == '}' && i > 0 && src[i-1] == '%':
			default:
				t.Fatalf("Rewrite(%q) = %q: byte %d changed from %q to %q", src, out, i, src[i], out[i])
			}
		}
	})
}

// FuzzFragmentKey: FragmentKey never panics, its keys are in the named
// fragments' namespace, and two calls give one key exactly when their
// vary-on values are equal.
func FuzzFragmentKey(f *testing.F) {
	f.Add("sidebar", "a", int64(1), []byte("x"), "a", int64(1), []byte("x"))
	f.Add("n", "a:b", int64(0), []byte{}, "a", int64(0), []byte(":b"))
	f.Add("", "", int64(-1), []byte(nil), "", int64(-1), []byte(nil))
	f.Fuzz(func(t *testing.T, name, s1 string, n1 int64, b1 []byte, s2 string, n2 int64, b2 []byte) {
		k1, err := pongotag.FragmentKey(name, s1, n1, b1)
		if name == "" {
			if err == nil {
				t.Fatalf("FragmentKey with an empty name = %q; want an error", k1)
			}
			return
		}
		if err != nil {
			t.Fatalf("FragmentKey(%q, %q, %d, %q): %v", name, s1, n1, b1, err)
		}
		if !strings.HasPrefix(k1, "f:n:") {
			t.Fatalf("FragmentKey(%q, ...) = %q; want the f:n: namespace", name, k1)
		}
		k2, err := pongotag.FragmentKey(name, s2, n2, b2)
		if err != nil {
			t.Fatal(err)
		}
		equal := s1 == s2 && n1 == n2 && string(b1) == string(b2)
		if (k1 == k2) != equal {
			t.Fatalf("keys of (%q %d %q) and (%q %d %q) equal: %v; values equal: %v", s1, n1, b1, s2, n2, b2, k1 == k2, equal)
		}
	})
}
