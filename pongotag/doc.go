// Package pongotag caches blocks of pongo2 templates in an
// [echocache.Cache], Flask-Cache's {% cache %} template tag for Go, and
// renders pongo2 templates for Echo.
//
// Importing the package registers the cache tag with pongo2 (pongo2 tags
// are global), so it works in every pongo2 template:
//
//	{% cache 30 %}
//	<h3>Random Zen of Python</h3>
//	<strong>{{ get_random_quote() }}</strong>
//	{% endcache %}
//
// # Syntax
//
//	{% cache TTL [name] [vary-on ...] %} ... {% endcache %}
//
// TTL is how long the rendered block is kept:
//
//   - an integer or decimal number of seconds: 30, 0.5;
//   - a duration string: "5m", "1h30m" (or a number in a string, "30");
//   - any expression that evaluates to one of those, or to a time.Duration:
//     ttl, 60*5, settings.ttl;
//   - 0 means the cache's default TTL (echocache.Config.DefaultTTL, five
//     minutes unless configured); a negative TTL means the block never
//     expires (it can still be evicted or deleted);
//   - "del" deletes the stored block and renders it uncached, as
//     Flask-Caching's tag does.
//
// A string literal right after the TTL names the block. Every other
// argument is a vary-on value: an expression whose value becomes part of
// the key, so the block is cached once per distinct value (per user, per
// page...). Arguments are separated by spaces or commas (Flask-Caching's
// {% cache 60*5, "sidebar" %} works); use a comma before a vary-on value
// that starts with a minus sign, which would otherwise be a subtraction.
//
//	{% cache 300 "sidebar" user.ID lang %} ... {% endcache %}
//	{% cache "5m" page.Slug %} ... {% endcache %}
//
// The cached output does not depend on anything but the key: a block that
// prints variables other than its vary-on values shows the values of the
// render that stored it (as in Django and Flask).
//
// # The <% %> spelling
//
// The tags can also be written <% cache TTL … %> … <% endcache %> in
// templates read through [Loader] (and so through [Renderer]) or
// [WrapLoader], in strings passed to [FromString], and in any text passed
// through [Rewrite]. Only cache and endcache tags are rewritten: any other
// <% (an EJS template inside a <script>, "100%>" in markup), text inside
// {% verbatim %}, and the insides of other tags are left as they are. The
// rewrite keeps every byte in place, so errors name the same line and
// column as in the file.
//
// # Keys
//
// Every key is in the store's "f:" namespace (see internal/keyspace).
//
// A named block is keyed by its name and its vary-on values, and nothing
// else: two templates that use the same name share the entry, and code can
// delete it with [DeleteFragment] or [echocache.Cache.DeleteFragment] and
// [FragmentKey], as Django and Flask-Caching do with
// make_template_fragment_key. Editing the block does not change its key.
// A named block cannot contain a {% block %} tag, since its key would be
// shared by every template that overrides that block.
//
// An unnamed block is keyed by its template's name, its position (line and
// column), a digest of its own source, the autoescape mode and its vary-on
// values. Editing the block changes its key, so the edited block is
// rendered afresh at once. (Editing a template it includes does not: delete
// its entries, or name such blocks and delete them by name.) Templates
// built from strings have no name, so their whole source identifies them.
// Through [Loader] and [Renderer], template names are paths from the
// template root, so every process and machine computes the same keys
// (pongo2's own file loaders often name templates by absolute path).
// When an unnamed block contains a {% block %} tag or block.Super, its
// output depends on the templates extending its own, so the key also
// covers the names and sources of the whole {% extends %} chain being
// rendered: one child's output is never served for another.
//
// Vary-on values are encoded by value, unambiguously: "a_b" and the pair
// "a", "b" give different keys, integers of every type are one integer,
// structs are encoded by their type and exported fields (never by their
// printed form), maps by their sorted entries. A value implementing
// [Keyer] or encoding.TextMarshaler (time.Time...) is encoded by what that
// returns. See [FragmentKey].
//
// # Which cache
//
// A block uses the *echocache.Cache in its render context under the
// variable echocache ([CacheVar]): from the data passed to Execute, else
// from the template set's Globals (where [Renderer] puts its cache). With
// none, it uses the package default set by [SetDefaultCache]; with no
// cache at all, or a cache without a store, the block renders uncached.
//
// # Behaviour
//
//   - A hit writes the stored bytes: the output is byte-for-byte that of
//     the miss that stored it, escaped once.
//   - Blocks nest (Russian-doll caching): an inner block inside an outer
//     hit is not even looked up, and an outer miss reuses inner hits.
//   - Concurrent renders of a block that is not cached render its body
//     once per process and share the output.
//   - The body runs in its own scope: {% set %} inside a cache block does
//     not leak out of it, with or without a cache, hit or miss.
//   - A store that fails or times out never fails the page: the block is
//     rendered uncached and the error is logged (rate-limited) by the
//     cache's logger and counted in its Stats. A TTL or vary-on value that
//     cannot be used (a TTL of "abc", a func as vary-on value) also renders
//     the block uncached, with a warning.
//   - Template errors are pongo2 errors naming the template, line and
//     column: a cache tag without TTL, a cache tag never closed by
//     endcache, endcache with arguments or without a cache tag.
//
// # Echo
//
// [Renderer] is an echo.Renderer over an fs.FS (a directory or an embed.FS)
// that parses each template once, reloads edited templates in development
// mode, and passes the echo.Context ([EchoVar]) and the cache to templates.
package pongotag
