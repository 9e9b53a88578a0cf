package pongotag_test

import (
	"testing"

	"github.com/flosch/pongo2/v6"

	"github.com/echocache/echocache/pongotag"
)

func TestRewrite(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"ok, cache and endcache", `<% cache 30 %>x<% endcache %>`, `{% cache 30 %}x{% endcache %}`},
		{"ok, no spaces", `<%cache 30%>x<%endcache%>`, `{%cache 30%}x{%endcache%}`},
		{"ok, whitespace control", `<%- cache 30 -%>x<%- endcache -%>`, `{%- cache 30 -%}x{%- endcache -%}`},
		{"ok, name and vary", `<% cache "5m" "side" user.ID, lang %>`, `{% cache "5m" "side" user.ID, lang %}`},
		{"ok, %> inside a string", `<% cache 30 "a%>b" %>`, `{% cache 30 "a%>b" %}`},
		{"ok, escaped quote in a string", `<% cache 30 "a\"%>" %>`, `{% cache 30 "a\"%>" %}`},
		{"ok, single quotes", `<% cache 30 'x%>' %>`, `{% cache 30 'x%>' %}`},
		{"ok, expression TTL", `<% cache ttl*2 %>`, `{% cache ttl*2 %}`},
		{"ok, parenthesised TTL", `<% cache (a) %>`, `{% cache (a) %}`},
		{"ok, negative TTL", `<% cache -1 %>`, `{% cache -1 %}`},
		{"ok, no TTL still rewritten for the error", `<% cache %>`, `{% cache %}`},
		{"ok, endcache with arguments rewritten for the error", `<% endcache x %>`, `{% endcache x %}`},
		{"ok, unclosed: only the opener", "<% cache 30\n%>", "{% cache 30\n%>"},
		{"ok, mixed spellings", `<% cache 30 %>x{% endcache %}`, `{% cache 30 %}x{% endcache %}`},
		{"ok, several", "<% cache 1 %>a<% endcache %>\n<% cache 2 %>b<% endcache %>", "{% cache 1 %}a{% endcache %}\n{% cache 2 %}b{% endcache %}"},

		{"nok, EJS in a script", `<script type="text/template"><% if (x) { %><%= x %><% } %></script>`, ``},
		{"nok, EJS cache variable", `<% cache.get(k) %><% cache = x %><% cacheX 1 %><% cache(1) %>`, ``},
		{"nok, EJS endcache call", `<% endcache() %>`, ``},
		{"nok, percentage in markup", `<div style="width:100%>x</div><b>50%</b>`, ``},
		{"nok, asp-style tags", `<%@ Page %><%# x %><%: y %>`, ``},
		{"nok, inside verbatim", `{% verbatim %}<% cache 30 %>x<% endcache %>{% endverbatim %}`, ``},
		{"nok, inside a comment", `{# <% cache 30 %> #}`, ``},
		{"nok, inside a variable's string", `{{ "<% cache 30 %>" }}`, ``},
		{"nok, inside a tag's string", `{% set s = '<% endcache %>' %}`, ``},
		{"nok, lone <%", `a <% b`, ``},
		{"nok, at the end", `x<%`, ``},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == "" {
				want = tc.in
			}
			got := pongotag.Rewrite(tc.in)
			if got != want {
				t.Errorf("Rewrite(%q) = %q; want %q", tc.in, got, want)
			}
			if len(got) != len(tc.in) {
				t.Errorf("Rewrite changed the length: %d -> %d", len(tc.in), len(got))
			}
		})
	}
	// Text after verbatim is rewritten again.
	in := `{% verbatim %}<% cache 1 %>{% endverbatim %}<% cache 2 %>`
	if got, want := pongotag.Rewrite(in), `{% verbatim %}<% cache 1 %>{% endverbatim %}{% cache 2 %}`; got != want {
		t.Errorf("Rewrite(%q) = %q; want %q", in, got, want)
	}
}

// Rewriting keeps line and column numbers: errors in the <% %> spelling
// point where the same errors in the {% %} spelling do.
func TestRewriteKeepsErrorPositions(t *testing.T) {
	pairs := []struct{ percent, braces string }{
		{"<p>\n  <% cache %>x<% endcache %>", "<p>\n  {% cache %}x{% endcache %}"},
		{"<p>100%>\n<script><% if (a) { %></script>\n   <% cache 30 %>x<% endcache y %>",
			"<p>100%>\n<script><% if (a) { %></script>\n   {% cache 30 %}x{% endcache y %}"},
		{"<p>\n<% cache 30 %>\n  <% cache 5 %>x<% endcache %>", "<p>\n{% cache 30 %}\n  {% cache 5 %}x{% endcache %}"},
		{"<p>\n\n<% endcache %>", "<p>\n\n{% endcache %}"},
		{"<p>\n <% cache 30\n%>", "<p>\n {% cache 30\n%>"},
		{"<p>\n <% cache \"soon\" %>", "<p>\n {% cache \"soon\" %}"},
	}
	for _, p := range pairs {
		_, err1 := pongotag.FromString(nil, p.percent)
		_, err2 := pongo2.FromString(p.braces)
		if err1 == nil || err2 == nil {
			t.Errorf("%q: errors %v and %v; want both to fail", p.percent, err1, err2)
			continue
		}
		if err1.Error() != err2.Error() {
			t.Errorf("%q:\n<%% %%> spelling: %v\n{%% %%} spelling: %v", p.percent, err1, err2)
		}
	}
}

func TestRewriteRendersLikeBraces(t *testing.T) {
	c, _, _ := newCache(t)
	var n counter
	src := "<script>var t = `<%= name %>`; // 100%>\n</script>\n<% cache 30 %><b>{{ next() }}</b><% endcache %>"
	tpl := mustParse(t, src)
	ctx := pongo2.Context{pongotag.CacheVar: c, "next": n.next}
	want := "<script>var t = `<%= name %>`; // 100%>\n</script>\n<b>1</b>"
	for i := range 2 {
		if got := render(t, tpl, ctx); got != want {
			t.Errorf("render %d = %q; want %q", i+1, got, want)
		}
	}
}
