package pongotag

import (
	"crypto/sha256"
	"errors"
	"reflect"

	"github.com/flosch/pongo2/v6"
)

// errNoChain is the warning when the template chain cannot be read.
var errNoChain = errors.New("cannot identify the templates extending this one (pongo2 internals changed?)")

// chain returns a digest of the chain of templates a block renders in: the
// name and source of every template from the root of the {% extends %}
// chain down to the template being rendered. A block whose body holds a
// {% block %} tag or block.Super renders differently for each child that
// extends its template, so its key must include this.
//
// pongo2 keeps the chain in unexported fields (Template.parent, child,
// name, tpl); they are read, never written, through reflect. Every child
// template gets its own parsed copy of its parents ({% extends %} parses
// the parent afresh), so the chain of a parsed block never changes and is
// computed once.
func (n *cacheNode) chain() ([]byte, error) {
	n.chainOnce.Do(func() {
		n.chainSeed, n.chainError = chainDigest(n.owner)
	})
	return n.chainSeed, n.chainError
}

func chainDigest(owner *pongo2.Template) ([]byte, error) {
	if owner == nil {
		return nil, errNoChain
	}
	field := func(t reflect.Value, name string, kind reflect.Kind) (reflect.Value, bool) {
		f := t.FieldByName(name)
		return f, f.IsValid() && f.Kind() == kind
	}
	tpl := reflect.ValueOf(owner).Elem()
	// Up to the root...
	for {
		p, ok := field(tpl, "parent", reflect.Pointer)
		if !ok {
			return nil, errNoChain
		}
		if p.IsNil() {
			break
		}
		tpl = p.Elem()
	}
	// ...and down to the template being rendered.
	h := sha256.New()
	for depth := 0; ; depth++ {
		name, ok1 := field(tpl, "name", reflect.String)
		src, ok2 := field(tpl, "tpl", reflect.String)
		c, ok3 := field(tpl, "child", reflect.Pointer)
		if !ok1 || !ok2 || !ok3 || depth > 1000 {
			return nil, errNoChain
		}
		h.Write(appendString(nil, name.String()))
		h.Write(appendString(nil, src.String()))
		if c.IsNil() {
			break
		}
		tpl = c.Elem()
	}
	return append([]byte{'c'}, h.Sum(nil)...), nil
}
