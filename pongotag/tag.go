package pongotag

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flosch/pongo2/v6"
	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/stores"
)

// Names under which templates find things in their context.
const (
	// CacheVar is the context variable holding the *echocache.Cache that
	// {% cache %} blocks use. It is looked up in the render context, which
	// pongo2 fills from the template set's Globals first and then from the
	// data passed to Execute, so a value in the data wins over a global.
	CacheVar = "echocache"

	// EchoVar is the context variable holding the echo.Context of the
	// request, set by [Renderer]. {% cache %} blocks use its request's
	// context for store calls.
	EchoVar = "echo"
)

// fillVar is the private context variable that marks the fragments being
// rendered on the current call stack (see fillFrame).
const fillVar = "_pongotag_fill"

var defaultCache atomic.Pointer[echocache.Cache]

// SetDefaultCache sets the cache that {% cache %} blocks use when their
// render context has none (see [CacheVar]). nil removes it: such blocks
// then render uncached. It is safe to call at any time.
func SetDefaultCache(c *echocache.Cache) { defaultCache.Store(c) }

// DefaultCache returns the cache set by SetDefaultCache, or nil.
func DefaultCache() *echocache.Cache { return defaultCache.Load() }

func init() {
	// pongo2 registers tags globally, once per process; a second
	// registration of the same name is a programming error.
	if err := pongo2.RegisterTag("cache", parseCacheTag); err != nil {
		panic("pongotag: " + err.Error())
	}
	if err := pongo2.RegisterTag("endcache", parseStrayEndcache); err != nil {
		panic("pongotag: " + err.Error())
	}
}

// ttlValue is a resolved TTL.
type ttlValue struct {
	d   time.Duration // 0: the cache's default; < 0: no expiry
	del bool          // "del": delete the entry and render uncached
}

// cacheNode is one parsed {% cache %} block. Everything that does not
// depend on the render is computed at parse time, so a hit costs a map
// lookup or two and one store Get.
type cacheNode struct {
	wrapper *pongo2.NodeWrapper
	start   *pongo2.Token
	where   string // "template line L col C", for warnings

	ttlExpr pongo2.IEvaluator // nil when the TTL is a literal
	ttl     ttlValue          // the literal TTL

	named bool
	name  string
	vary  []pongo2.IEvaluator

	// seed is the encoded static part of the key (see key.go).
	seed []byte
	// static holds the complete keys of a block whose key does not depend
	// on the render, indexed by autoescape (named blocks use index 0).
	static  [2]string
	dynamic bool // the key must be built at render time

	// Unnamed blocks whose output depends on the chain of templates being
	// rendered ({% block %} tags or block.Super inside the body) mix a
	// digest of that chain into their key, computed once.
	chainDep   bool
	owner      *pongo2.Template
	chainOnce  sync.Once
	chainSeed  []byte
	chainError error
}

func parseStrayEndcache(doc *pongo2.Parser, start *pongo2.Token, args *pongo2.Parser) (pongo2.INodeTag, *pongo2.Error) {
	return nil, doc.Error("Tag 'endcache' without a matching 'cache' tag (expected {% cache TTL %} before it).", start)
}

func parseCacheTag(doc *pongo2.Parser, start *pongo2.Token, args *pongo2.Parser) (pongo2.INodeTag, *pongo2.Error) {
	n := &cacheNode{start: start}
	n.where = fmt.Sprintf("%s line %d col %d", start.Filename, start.Line, start.Col)

	if args.Remaining() == 0 {
		return nil, args.Error(`Tag 'cache' requires a TTL: {% cache 30 %} (seconds), {% cache "5m" %} (duration), an expression, or "del".`, start)
	}
	if err := n.parseTTL(args); err != nil {
		return nil, err
	}
	args.Match(pongo2.TokenSymbol, ",")
	if tok := args.PeekType(pongo2.TokenString); tok != nil {
		args.Consume()
		if tok.Val == "" {
			return nil, args.Error("The name of a cache block must not be empty.", tok)
		}
		if next := args.PeekType(pongo2.TokenSymbol); next != nil && next.Val != "," {
			return nil, args.Error("The name of a cache block must be a plain string literal (no filters or operators); vary-on values follow it, separated by spaces or commas.", next)
		}
		n.named, n.name = true, tok.Val
	}
	for args.Remaining() > 0 {
		if comma := args.Match(pongo2.TokenSymbol, ","); comma != nil && args.Remaining() == 0 {
			return nil, args.Error("Expected a vary-on value after ','.", comma)
		}
		expr, err := args.ParseExpression()
		if err != nil {
			return nil, err
		}
		n.vary = append(n.vary, expr)
	}

	bodyStart := doc.Count() - doc.Remaining()
	wrapper, endArgs, err := doc.WrapUntilTag("endcache")
	if err != nil {
		if doc.Remaining() == 0 && strings.Contains(err.Error(), "expected tag endcache") {
			return nil, doc.Error("Tag 'cache' is never closed: expected {% endcache %} before the end of the template.", start)
		}
		return nil, err
	}
	if endArgs.Remaining() > 0 {
		return nil, endArgs.Error("Tag 'endcache' takes no arguments.", nil)
	}
	n.wrapper = wrapper
	bodyEnd := doc.Count() - doc.Remaining() - 3 // {% endcache %}

	body := sha256.New()
	innerBlockTag := false
	for i := bodyStart; i < bodyEnd; i++ {
		t := doc.Get(i)
		writeToken(body, t)
		if t.Typ == pongo2.TokenIdentifier && t.Val == "block" {
			n.chainDep = true
			if prev := doc.Get(i - 1); prev != nil && prev.Typ == pongo2.TokenSymbol && prev.Val == "{%" {
				innerBlockTag = true
			}
		}
	}
	if n.named && innerBlockTag {
		return nil, doc.Error(fmt.Sprintf("Named cache block %q contains a {%% block %%} tag: its key (name and vary-on values) would be shared by every template that overrides that block. Use an unnamed cache block, or put the cache tag inside the block.", n.name), start)
	}

	if n.named {
		n.chainDep = false // named blocks are keyed by name and vary-on values only
		n.seed = namedSeed(n.name)
		n.dynamic = len(n.vary) > 0
		if !n.dynamic {
			n.static[0] = n.finishKey(n.seed)
			n.static[1] = n.static[0]
		}
		return n, nil
	}

	identity := start.Filename
	if identity == "<string>" {
		// Templates made from strings have no name: identify them by their
		// whole source, so two of them never share a block by accident.
		whole := sha256.New()
		for i := 0; i < doc.Count(); i++ {
			writeToken(whole, doc.Get(i))
		}
		identity = "<string>" + string(whole.Sum(nil))
	}
	n.seed = unnamedSeed(identity, start.Line, start.Col, body.Sum(nil))
	if n.chainDep {
		n.owner = doc.Error("", nil).Template
	}
	n.dynamic = len(n.vary) > 0 || n.chainDep
	if !n.dynamic {
		for ae := range 2 {
			n.static[ae] = n.finishKey(appendAutoescape(bytes.Clone(n.seed), ae == 1))
		}
	}
	return n, nil
}

// writeToken feeds a token to a digest: its type, whitespace trimming and
// value, length-prefixed.
func writeToken(h interface{ Write([]byte) (int, error) }, t *pongo2.Token) {
	var b [18]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(t.Typ))
	if t.TrimWhitespaces {
		b[8] = 1
	}
	binary.BigEndian.PutUint64(b[9:17], uint64(len(t.Val)))
	h.Write(b[:17])
	h.Write([]byte(t.Val))
}

// parseTTL parses the first argument. A literal is checked and resolved
// now; anything else is evaluated at every render.
func (n *cacheNode) parseTTL(args *pongo2.Parser) *pongo2.Error {
	first := args.Current()
	before := args.Count() - args.Remaining()
	expr, err := args.ParseExpression()
	if err != nil {
		return err
	}
	used := args.Count() - args.Remaining() - before
	literal := ""
	switch {
	case used == 1 && (first.Typ == pongo2.TokenNumber || first.Typ == pongo2.TokenString):
		literal = first.Val
	case used == 2 && first.Typ == pongo2.TokenSymbol && first.Val == "-" && args.Get(before+1).Typ == pongo2.TokenNumber:
		literal = "-" + args.Get(before+1).Val
	}
	if literal == "" && used == 1 && first.Typ == pongo2.TokenString {
		literal = `""`
	}
	if literal == "" {
		n.ttlExpr = expr
		return nil
	}
	if literal == `""` {
		return args.Error(`Tag 'cache': the TTL must not be empty; expected seconds (30), a duration ("5m") or "del".`, first)
	}
	ttl, perr := parseTTLString(literal)
	if perr != nil {
		return args.Error(fmt.Sprintf("Tag 'cache': %v.", perr), first)
	}
	n.ttl = ttl
	return nil
}

// parseTTLString reads "del", a number of seconds or a Go duration.
func parseTTLString(s string) (ttlValue, error) {
	s = strings.TrimSpace(s)
	if s == "del" {
		return ttlValue{del: true}, nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return secondsTTL(secs)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return ttlValue{}, fmt.Errorf(`TTL %q is not seconds (30), a duration ("5m", "1h30m") or "del"`, s)
	}
	return ttlValue{d: d}, nil
}

func secondsTTL(secs float64) (ttlValue, error) {
	if math.IsNaN(secs) || math.IsInf(secs, 0) || math.Abs(secs) > math.MaxInt64/float64(time.Second) {
		return ttlValue{}, fmt.Errorf("TTL %v seconds is out of range", secs)
	}
	d := time.Duration(secs * float64(time.Second))
	if d == 0 && secs != 0 {
		d = 1 // a tiny positive TTL is not "default"
	}
	return ttlValue{d: d}, nil
}

// resolveTTL returns the block's TTL for this render.
func (n *cacheNode) resolveTTL(ctx *pongo2.ExecutionContext) (ttlValue, *pongo2.Error, error) {
	if n.ttlExpr == nil {
		return n.ttl, nil, nil
	}
	v, perr := n.ttlExpr.Evaluate(ctx)
	if perr != nil {
		return ttlValue{}, perr, nil
	}
	ttl, err := ttlFromValue(v.Interface())
	return ttl, nil, err
}

func ttlFromValue(v any) (ttlValue, error) {
	switch x := v.(type) {
	case time.Duration:
		return ttlValue{d: x}, nil
	case string:
		return parseTTLString(x)
	case int:
		return secondsTTL(float64(x))
	case int64:
		return secondsTTL(float64(x))
	case int32:
		return secondsTTL(float64(x))
	case uint:
		return secondsTTL(float64(x))
	case uint64:
		return secondsTTL(float64(x))
	case uint32:
		return secondsTTL(float64(x))
	case float64:
		return secondsTTL(x)
	case float32:
		return secondsTTL(float64(x))
	}
	return ttlValue{}, fmt.Errorf("TTL evaluated to %T (%v); expected seconds, a duration or \"del\"", v, v)
}

// cacheFor finds the cache of a render: the context (data, then set
// globals), then the package default.
func cacheFor(ctx *pongo2.ExecutionContext) *echocache.Cache {
	if v, ok := ctx.Public[CacheVar]; ok {
		if pv, ok := v.(*pongo2.Value); ok {
			v = pv.Interface()
		}
		if c, ok := v.(*echocache.Cache); ok && c != nil {
			return c
		}
	}
	return defaultCache.Load()
}

// storeContext is the context of store calls: the request's when the
// template has the echo.Context.
func storeContext(ctx *pongo2.ExecutionContext) context.Context {
	if v, ok := ctx.Public[EchoVar]; ok {
		if c, ok := v.(echo.Context); ok {
			if r := c.Request(); r != nil {
				return r.Context()
			}
		}
	}
	return context.Background()
}

// fillFrame marks a fragment being rendered on this call stack. A block
// that meets its own key again (a template that includes itself) renders
// uncached instead of waiting for itself.
type fillFrame struct {
	c      *echocache.Cache
	key    string
	parent *fillFrame
}

func activeFrame(ctx *pongo2.ExecutionContext) *fillFrame {
	if f, ok := ctx.Private[fillVar].(*fillFrame); ok {
		return f
	}
	// {% include %} passes the includer's private variables as public ones.
	if f, ok := ctx.Public[fillVar].(*fillFrame); ok {
		return f
	}
	return nil
}

func (f *fillFrame) contains(c *echocache.Cache, key string) bool {
	for ; f != nil; f = f.parent {
		if f.c == c && f.key == key {
			return true
		}
	}
	return false
}

// Execute renders the block: from the cache on a hit; otherwise once per
// process for concurrent renders, storing the output. Store problems never
// fail the page: the block renders uncached.
func (n *cacheNode) Execute(ctx *pongo2.ExecutionContext, w pongo2.TemplateWriter) *pongo2.Error {
	ec := cacheFor(ctx)
	if ec == nil || ec.Store() == nil {
		return n.render(ctx, w, nil)
	}
	c := (*core.Cache)(ec) // the fragment calls live in the cache's core
	ttl, perr, err := n.resolveTTL(ctx)
	if perr != nil {
		return perr
	}
	if err != nil {
		c.Logf("pongotag: %s: %v; rendering the block uncached", n.where, err)
		return n.render(ctx, w, nil)
	}
	key := n.static[0]
	if ctx.Autoescape {
		key = n.static[1]
	}
	if n.dynamic {
		key, perr, err = n.renderKey(ctx)
		if perr != nil {
			return perr
		}
		if err != nil {
			c.Logf("pongotag: %s: %v; rendering the block uncached", n.where, err)
			return n.render(ctx, w, nil)
		}
	}
	sctx := storeContext(ctx)
	if ttl.del {
		_ = ec.DeleteFragment(sctx, key) // logged and counted by the cache
		return n.render(ctx, w, nil)
	}
	b, err := c.GetFragment(sctx, key)
	if err == nil {
		w.Write(b)
		return nil
	}
	if !errors.Is(err, stores.ErrNotFound) {
		// The store could not answer (logged and counted by the cache):
		// render without waiting for it a second time to store the block.
		return n.render(ctx, w, nil)
	}

	frame := activeFrame(ctx)
	if frame.contains(ec, key) {
		return n.render(ctx, w, frame)
	}
	if frame != nil {
		// Inside the render of an outer block, which other requests may
		// be waiting for: never wait for another request here (two
		// templates nesting two named blocks in opposite orders would
		// wait for each other forever). Render and store this block.
		frame = &fillFrame{c: ec, key: key, parent: frame}
		var buf bytes.Buffer
		if perr := n.render(ctx, &buf, frame); perr != nil {
			return perr
		}
		_ = c.SetFragment(context.WithoutCancel(sctx), key, buf.Bytes(), ttl.d) // logged and counted
		w.Write(buf.Bytes())
		return nil
	}
	frame = &fillFrame{c: ec, key: key, parent: frame}
	var renderErr *pongo2.Error
	b, _, err = c.FillFragment(sctx, key, ttl.d, func() ([]byte, error) {
		var buf bytes.Buffer
		if perr := n.render(ctx, &buf, frame); perr != nil {
			renderErr = perr
			return nil, perr
		}
		return buf.Bytes(), nil
	})
	if err != nil {
		if renderErr != nil {
			return renderErr // this render's own body failed
		}
		return ctx.OrigError(err, n.start) // this request's context ended while it waited
	}
	w.Write(b)
	return nil
}

// render executes the body in a child context, so that variables the body
// sets stay inside it, as they must on a hit, where the body does not run.
func (n *cacheNode) render(ctx *pongo2.ExecutionContext, w pongo2.TemplateWriter, frame *fillFrame) *pongo2.Error {
	child := pongo2.NewChildExecutionContext(ctx)
	if frame != nil {
		child.Private[fillVar] = frame
	}
	return n.wrapper.Execute(child, w)
}
