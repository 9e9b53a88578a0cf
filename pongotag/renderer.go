package pongotag

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"sync"

	"github.com/flosch/pongo2/v6"
	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
)

// RendererConfig configures a [Renderer].
type RendererConfig struct {
	// FS holds the templates: an embed.FS, os.DirFS(dir), fstest.MapFS...
	// Required unless Dir is set.
	FS fs.FS

	// Dir is a directory of templates, used when FS is nil.
	// Optional. Default value "".
	Dir string

	// Cache is the cache of {% cache %} blocks, available to templates as
	// the global variable echocache (CacheVar). Render data can still
	// name another one under that variable, and a request that went
	// through echocache.WithCache uses that middleware's cache.
	// Optional. Default value nil: blocks use the cache set with
	// SetDefaultCache, or render uncached.
	Cache *echocache.Cache

	// Development makes Render check, on every call, whether the template
	// or any template it extends or includes has changed, and parse it
	// again if so. Without it each template is parsed once and reused.
	// Cached blocks stay valid across reloads unless their own source
	// changed.
	// Optional. Default value false.
	Development bool

	// Globals are variables available to every template.
	// Optional. Default value nil.
	Globals pongo2.Context
}

// Renderer is an echo.Renderer for pongo2 templates read through a
// [Loader], so both spellings of the cache tag work. Templates are parsed
// on first use and reused. Templates see the render data, the request's
// echo.Context as the variable echo (EchoVar) and the cache as echocache
// (CacheVar): the one in the render data, else the request's (put there by
// echocache.WithCache), else RendererConfig.Cache. It is safe for
// concurrent use.
//
//	e.Renderer = pongotag.NewRenderer(os.DirFS("templates"), cache)
//	...
//	return c.Render(http.StatusOK, "zen.html", echo.Map{"quote": quote})
type Renderer struct {
	set   *pongo2.TemplateSet
	fsys  fs.FS
	cache *echocache.Cache
	dev   bool

	mu      sync.RWMutex // guards tpls
	tpls    map[string]*parsed
	parseMu sync.Mutex // serialises parsing

	recMu     sync.Mutex // guards recording
	recording *[]dependency
}

type parsed struct {
	tpl  *pongo2.Template
	deps []dependency // development mode: what the template was made of
}

type dependency struct {
	name string
	src  []byte
}

// NewRenderer returns a Renderer for the templates in fsys whose blocks use
// cache (which may be nil: see RendererConfig.Cache). It panics if fsys is
// nil; use NewRendererWithConfig for other options.
func NewRenderer(fsys fs.FS, cache *echocache.Cache) *Renderer {
	if fsys == nil {
		panic("pongotag: NewRenderer needs an fs.FS")
	}
	r, err := NewRendererWithConfig(RendererConfig{FS: fsys, Cache: cache})
	if err != nil {
		panic(err) // unreachable: a config with an FS is valid
	}
	return r
}

// NewRendererWithConfig returns a Renderer configured by cfg, or an error
// for an invalid config (no FS and no Dir, or a Dir that is not a
// directory).
func NewRendererWithConfig(cfg RendererConfig) (*Renderer, error) {
	fsys := cfg.FS
	if fsys == nil {
		if cfg.Dir == "" {
			return nil, errors.New("pongotag: RendererConfig needs FS or Dir")
		}
		fi, err := os.Stat(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("pongotag: RendererConfig.Dir: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("pongotag: RendererConfig.Dir %q is not a directory", cfg.Dir)
		}
		fsys = os.DirFS(cfg.Dir)
	}
	r := &Renderer{fsys: fsys, cache: cfg.Cache, dev: cfg.Development, tpls: map[string]*parsed{}}
	loader := &Loader{fsys: fsys}
	if r.dev {
		loader.read = r.record
	}
	r.set = pongo2.NewSet("pongotag", loader)
	r.set.Globals.Update(cfg.Globals)
	if cfg.Cache != nil {
		r.set.Globals[CacheVar] = cfg.Cache
	}
	return r, nil
}

// TemplateSet returns the renderer's template set, for options such as
// TrimBlocks. Change it before the first render.
func (r *Renderer) TemplateSet() *pongo2.TemplateSet { return r.set }

// Template returns the parsed template name, parsing it on first use (and,
// in development mode, again when it changed).
func (r *Renderer) Template(name string) (*pongo2.Template, error) {
	// Templates are stored under their clean names: a name found as given
	// is clean, and costs no cleaning.
	r.mu.RLock()
	p := r.tpls[name]
	r.mu.RUnlock()
	if p == nil {
		name = cleanName(name)
		r.mu.RLock()
		p = r.tpls[name]
		r.mu.RUnlock()
	}
	if p != nil && (!r.dev || !r.changed(p)) {
		return p.tpl, nil
	}
	return r.parse(name)
}

func (r *Renderer) parse(name string) (*pongo2.Template, error) {
	r.parseMu.Lock()
	defer r.parseMu.Unlock()
	r.mu.RLock()
	p := r.tpls[name]
	r.mu.RUnlock()
	if p != nil && (!r.dev || !r.changed(p)) {
		return p.tpl, nil // parsed meanwhile
	}
	var deps []dependency
	r.recMu.Lock()
	r.recording = &deps
	r.recMu.Unlock()
	tpl, err := r.set.FromFile(name)
	r.recMu.Lock()
	r.recording = nil
	r.recMu.Unlock()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.tpls[name] = &parsed{tpl: tpl, deps: deps}
	r.mu.Unlock()
	return tpl, nil
}

// record is the loader's hook in development mode: it adds every template
// read during a parse to the parsed template's dependencies. (A template
// that another goroutine's render reads meanwhile, for an {% include %} of
// a computed name, is recorded too: one more file to check, no harm.)
func (r *Renderer) record(name string, src []byte) {
	r.recMu.Lock()
	if r.recording != nil {
		*r.recording = append(*r.recording, dependency{name, src})
	}
	r.recMu.Unlock()
}

// changed reports whether any file p was parsed from differs now.
func (r *Renderer) changed(p *parsed) bool {
	for _, d := range p.deps {
		src, err := fs.ReadFile(r.fsys, d.name)
		if err != nil || !bytes.Equal(src, d.src) {
			return true
		}
	}
	return false
}

// Render renders the template name with data (nil, a pongo2.Context,
// echo.Map or any map with string keys) into w. It implements
// echo.Renderer. Nothing is written when rendering fails.
func (r *Renderer) Render(w io.Writer, name string, data any, c echo.Context) error {
	if c == nil {
		return r.Execute(w, name, data, nil, nil, nil)
	}
	var logger echocache.Logger
	if e := c.Echo(); e != nil && e.Logger != nil {
		logger = e.Logger
	}
	// Not echocache.FromContext, which logs a request without a Cache:
	// here that is normal (the renderer has its own).
	reqCache, _ := c.Get(core.CacheContextKey).(*echocache.Cache)
	return r.Execute(w, name, data, c, reqCache, logger)
}

// Execute is Render for a request of any framework (pongotag/echov5 renders
// Echo v5's through it): it renders the template name with data into w.
// request, when not nil, is what templates see as echo (EchoVar) unless
// data names one; cache, when not nil, is the request's cache (put there
// by a WithCache middleware), which templates see as echocache (CacheVar)
// unless data names one, in place of RendererConfig.Cache; logger, when
// not nil, is given to the cache the blocks use if that cache has none.
// Nothing is written when rendering fails.
func (r *Renderer) Execute(w io.Writer, name string, data any, request any, cache *echocache.Cache, logger echocache.Logger) error {
	tpl, err := r.Template(name)
	if err != nil {
		return err
	}
	ctx, err := renderContext(data)
	if err != nil {
		return err
	}
	if request != nil {
		if _, ok := ctx[EchoVar]; !ok {
			ctx[EchoVar] = request
		}
	}
	use := r.cache
	if _, ok := ctx[CacheVar]; !ok && cache != nil {
		ctx[CacheVar] = cache
		use = cache
	}
	if use != nil && logger != nil {
		(*core.Cache)(use).AdoptLogger(logger)
	}
	return tpl.ExecuteWriter(ctx, w)
}

// renderContext copies data into a fresh context.
func renderContext(data any) (pongo2.Context, error) {
	ctx := pongo2.Context{}
	switch d := data.(type) {
	case nil:
	case pongo2.Context:
		ctx.Update(d)
	case map[string]any:
		ctx.Update(d)
	case echo.Map:
		ctx.Update(pongo2.Context(d))
	default:
		v := reflect.ValueOf(data)
		if v.Kind() != reflect.Map || v.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("pongotag: render data must be a map with string keys (pongo2.Context, echo.Map...), not %T", data)
		}
		it := v.MapRange()
		for it.Next() {
			ctx[it.Key().String()] = it.Value().Interface()
		}
	}
	return ctx, nil
}
