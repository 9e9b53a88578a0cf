// Package echov5 is the pongotag renderer for Echo v5
// (github.com/labstack/echo/v5): pongo2 templates with the cache tag, as
// pongotag.Renderer renders them for Echo v4, behind Echo v5's
// echo.Renderer. Templates see the request's *echo.Context as echo, and as
// echocache the cache that echocache/echov5.WithCache put in the request,
// else the renderer's. Import it under another name beside
// echocache/echov5:
//
//	import pongov5 "github.com/echocache/echocache/pongotag/echov5"
//
//	e.Renderer = pongov5.NewRenderer(os.DirFS("templates"), cache)
package echov5

import (
	"io"
	"io/fs"

	"github.com/labstack/echo/v5"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/pongotag"
)

// Renderer is an echo.Renderer (Echo v5) for pongo2 templates with the
// cache tag: a pongotag.Renderer, whose Template, TemplateSet and
// configuration it shares. It is safe for concurrent use.
type Renderer struct {
	*pongotag.Renderer
}

var _ echo.Renderer = (*Renderer)(nil)

// NewRenderer returns a Renderer for the templates in fsys whose blocks use
// cache (which may be nil: see pongotag.RendererConfig.Cache). It panics
// if fsys is nil.
func NewRenderer(fsys fs.FS, cache *echocache.Cache) *Renderer {
	return &Renderer{pongotag.NewRenderer(fsys, cache)}
}

// NewRendererWithConfig returns a Renderer configured by cfg, or
// pongotag.NewRendererWithConfig's error for an invalid config.
func NewRendererWithConfig(cfg pongotag.RendererConfig) (*Renderer, error) {
	r, err := pongotag.NewRendererWithConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Renderer{r}, nil
}

// Render renders the template name with data (nil, a pongo2.Context,
// echo.Map or any map with string keys) into w. It implements Echo v5's
// echo.Renderer. The cache the blocks use gets Echo's slog logger (at
// Warn) if it has no logger. Nothing is written when rendering fails.
func (r *Renderer) Render(c *echo.Context, w io.Writer, name string, data any) error {
	if c == nil {
		return r.Execute(w, name, data, nil, nil, nil)
	}
	var logger echocache.Logger
	if e := c.Echo(); e != nil && e.Logger != nil {
		logger = core.SlogLogger(e.Logger)
	}
	// Not echov5.FromContext, which logs a request without a Cache: here
	// that is normal (the renderer has its own).
	reqCache, _ := c.Get(core.CacheContextKeyV5).(*echocache.Cache)
	return r.Execute(w, name, data, c, reqCache, logger)
}
