package pongotag

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/flosch/pongo2/v6"
)

// Loader is a pongo2.TemplateLoader that reads templates from an fs.FS (a
// directory with os.DirFS, or an embed.FS) and accepts the <% cache %>
// spelling of the cache tags (see [Rewrite]).
//
// Template names are slash-separated paths from the root of the FS. Names
// in {% extends %} and {% include %} are resolved from the root too, not
// from the including template's directory, and cannot climb above the root:
// "../x.html" is "x.html".
type Loader struct {
	fsys fs.FS
	// read, when set, is told about every template read (the Renderer's
	// development mode records dependencies with it).
	read func(name string, src []byte)
}

// NewLoader returns a Loader reading from fsys.
func NewLoader(fsys fs.FS) *Loader { return &Loader{fsys: fsys} }

// Abs returns the canonical name of the template name, from the root of
// the FS; base is ignored.
func (l *Loader) Abs(base, name string) string { return cleanName(name) }

func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+strings.ReplaceAll(name, `\`, "/")), "/")
}

// Get returns the template's source, rewritten.
func (l *Loader) Get(name string) (io.Reader, error) {
	src, err := fs.ReadFile(l.fsys, name)
	if err != nil {
		return nil, err
	}
	if l.read != nil {
		l.read(name, src)
	}
	return strings.NewReader(Rewrite(string(src))), nil
}

// WrapLoader returns a loader that reads templates with l and accepts the
// <% cache %> spelling in them (see [Rewrite]). Names are resolved by l.
func WrapLoader(l pongo2.TemplateLoader) pongo2.TemplateLoader {
	return rewritingLoader{l}
}

type rewritingLoader struct{ pongo2.TemplateLoader }

func (r rewritingLoader) Get(path string) (io.Reader, error) {
	rd, err := r.TemplateLoader.Get(path)
	if err != nil {
		return nil, err
	}
	if c, ok := rd.(io.Closer); ok {
		defer c.Close()
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rd); err != nil {
		return nil, err
	}
	return strings.NewReader(Rewrite(buf.String())), nil
}
