package pongotag

import (
	"strings"

	"github.com/flosch/pongo2/v6"
)

// Rewrite turns the <% cache … %> and <% endcache %> spelling of the cache
// tags into pongo2's {% cache … %} and {% endcache %}. Nothing else
// changes: every other <% (an EJS template in a <script>, "100%>" in
// markup), text inside {% verbatim %}, comments, and the insides of
// {{ … }} and {% … %} tags are left as they are.
//
// The rewrite replaces "<%" with "{%" and "%>" with "%}", byte for byte,
// so line and column numbers in pongo2's errors are those of the source.
// A <% cache … tag whose %> is missing on its line is still rewritten at
// its start, so that pongo2 reports the unclosed tag where it is.
//
// A tag is a cache tag when "<%" (or "<%-") is followed by optional spaces,
// the word cache or endcache, and then the end of the tag, a space, or (for
// cache) the start of a TTL. "<% cache.get(k) %>" and "<% cache = x %>" are
// not cache tags.
func Rewrite(src string) string {
	if !strings.Contains(src, "<%") {
		return src
	}
	var out []byte
	for i := 0; i < len(src); {
		switch {
		case strings.HasPrefix(src[i:], "{% verbatim %}"):
			// pongo2 recognises exactly this spelling, and so do we.
			i += len("{% verbatim %}")
			end := strings.Index(src[i:], "{% endverbatim %}")
			if end < 0 {
				i = len(src)
			} else {
				i += end + len("{% endverbatim %}")
			}
		case strings.HasPrefix(src[i:], "{#"):
			i = skipComment(src, i+2)
		case strings.HasPrefix(src[i:], "{{"), strings.HasPrefix(src[i:], "{%"):
			i, _ = scanCode(src, i+2, "%}", "}}")
		case strings.HasPrefix(src[i:], "<%"):
			open, closeAt, next, ok := matchCacheTag(src, i)
			if !ok {
				i += 2
				continue
			}
			if out == nil {
				out = []byte(src)
			}
			out[open] = '{'
			if closeAt >= 0 {
				out[closeAt+1] = '}'
			}
			i = next
		default:
			i++
		}
	}
	if out == nil {
		return src
	}
	return string(out)
}

// skipComment skips a {# … #} comment, which pongo2 ends at "#}" and
// rejects at a newline.
func skipComment(src string, i int) int {
	for ; i < len(src); i++ {
		switch {
		case src[i] == '\n':
			return i
		case strings.HasPrefix(src[i:], "#}"):
			return i + 2
		}
	}
	return i
}

// scanCode skips the inside of a tag the way pongo2's lexer reads it, and
// returns the position after the first closing symbol from closers found
// outside string literals, with the position of that symbol (-1 when the
// line or the input ends first, or a character pongo2 stops at).
func scanCode(src string, i int, closers ...string) (next, closeAt int) {
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			return i, -1
		case c == '"' || c == '\'':
			i = skipString(src, i)
			continue
		case c == '-' && i+1 < len(src) && hasAnyPrefix(src[i+1:], closers):
			return i + 3, i + 1
		case hasAnyPrefix(src[i:], closers):
			return i + 2, i
		case c == ' ' || c == '\t' || c == '\r' || isIdentChar(c) || strings.IndexByte("=<>!&|()+-*/^,.%[]:", c) >= 0:
			i++
			continue
		}
		// pongo2 stops lexing the tag at an unknown character.
		return i, -1
	}
	return i, -1
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// skipString skips a string literal starting at src[i] (a quote), with
// pongo2's escapes \" and \\. It stops before a newline.
func skipString(src string, i int) int {
	q := src[i]
	for i++; i < len(src); i++ {
		switch src[i] {
		case '\\':
			if i+1 < len(src) && (src[i+1] == '"' || src[i+1] == '\\') {
				i++
			}
		case q:
			return i + 1
		case '\n':
			return i
		}
	}
	return i
}

func isIdentChar(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// matchCacheTag reports whether the "<%" at src[i] opens a cache or
// endcache tag. open is the position of "<", closeAt that of the "%" of the
// closing "%>" (-1 if the line has none), next where scanning resumes.
func matchCacheTag(src string, i int) (open, closeAt, next int, ok bool) {
	j := i + 2
	if j < len(src) && src[j] == '-' {
		j++
	}
	for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
		j++
	}
	w := j
	for w < len(src) && isIdentChar(src[w]) {
		w++
	}
	word := src[j:w]
	if word != "cache" && word != "endcache" {
		return 0, 0, 0, false
	}
	// What follows the word decides: the end of the tag, or spaces and
	// then (for cache) something a TTL can start with.
	k := w
	for k < len(src) && (src[k] == ' ' || src[k] == '\t') {
		k++
	}
	rest := src[k:]
	switch {
	case strings.HasPrefix(rest, "%>"), strings.HasPrefix(rest, "-%>"):
	case k == w:
		return 0, 0, 0, false // "cache" runs into something: cache.get, cache(
	case word == "endcache":
		// Arguments to endcache are an error pongo2 will report.
	case len(rest) > 0 && (isIdentChar(rest[0]) || strings.IndexByte(`"'-(`, rest[0]) >= 0):
	default:
		return 0, 0, 0, false // "<% cache = x %>" and the like
	}
	next, closeAt = scanCode(src, w, "%>")
	if closeAt < 0 && next < len(src) && src[next] != '\n' {
		// An unknown character inside: keep looking for "%>" on the line
		// so the whole tag is rewritten; pongo2 reports the character.
		for p := next; p < len(src) && src[p] != '\n'; p++ {
			if strings.HasPrefix(src[p:], "%>") {
				closeAt, next = p, p+2
				break
			}
		}
	}
	return i, closeAt, next, true
}

// FromString parses a template string that may use the <% cache %>
// spelling, in set (pongo2.DefaultSet when set is nil).
func FromString(set *pongo2.TemplateSet, src string) (*pongo2.Template, error) {
	if set == nil {
		set = pongo2.DefaultSet
	}
	return set.FromString(Rewrite(src))
}
