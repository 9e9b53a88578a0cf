package integration

import (
	"bufio"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/echocache/echocache/echocache"
)

// TestReadmeCodeIsReal checks that every Go code block of the README is
// real code that a user's module can compile: its lines appear, in order
// and contiguous, in a Go file of the repository (an example program or a
// runnable Example function), where the compiler and the tests check them,
// and they use no package a user cannot import: no import of an internal
// package, and no name of one that the file imports. Indentation is
// ignored so that a block can show part of a function. HTML blocks must
// likewise come from the examples' templates.
func TestReadmeCodeIsReal(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string][]source{} // by extension
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != ".." {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".go" || ext == ".html") {
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sources[ext] = append(sources[ext], source{path: path, lines: normalize(string(src)), internal: internalImports(path, src)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if n := len(codeBlocks(string(readme), "go")); n < 10 {
		t.Fatalf("README has %d Go code blocks; want the tutorial's (at least 10)", n)
	}
	for _, lang := range []string{"go", "html"} {
		for _, b := range codeBlocks(string(readme), lang) {
			lines := normalize(b.text)
			var in []source
			for _, src := range sources["."+lang] {
				if contains(src.lines, lines) {
					in = append(in, src)
				}
			}
			if len(in) == 0 {
				t.Errorf("README line %d: this %s block is not in any .%s file of the repository:\n%s", b.line, lang, lang, b.text)
				continue
			}
			if lang != "go" {
				continue
			}
			if bad := usesInternal(b.text, in[0].internal); bad != "" {
				t.Errorf("README line %d: this Go block (from %s) uses %s, which a user's module cannot import:\n%s", b.line, in[0].path, bad, b.text)
			}
		}
	}
}

// A source is a file the README's blocks may come from.
type source struct {
	path     string
	lines    []string
	internal map[string]string // the internal packages it imports: name -> path
}

// internalImports returns the packages under an internal/ directory that
// the Go file src imports, by the name the file uses for them.
func internalImports(path string, src []byte) map[string]string {
	f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if !strings.Contains(p, "/internal/") && !strings.HasSuffix(p, "/internal") {
			continue
		}
		name := p[strings.LastIndex(p, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		out[name] = p
	}
	return out
}

// usesInternal returns what in a Go block needs an internal package: an
// import of one, or a name of one that the file imports; "" when nothing
// does.
func usesInternal(block string, internal map[string]string) string {
	if m := regexp.MustCompile(`"[^"\s]*/internal(/[^"\s]*)?"`).FindString(block); m != "" {
		return "the import " + m
	}
	for name, path := range internal {
		if regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\.`).MatchString(block) {
			return name + ". (" + path + ")"
		}
	}
	return ""
}

// TestUsesInternal checks the check: what a user cannot compile is found.
func TestUsesInternal(t *testing.T) {
	internal := map[string]string{"demo": "github.com/echocache/echocache/examples/internal/demo"}
	for _, tt := range []struct {
		block string
		bad   bool
	}{
		{"return c.String(http.StatusOK, demo.Now())\n", true},
		{"import (\n\t\"github.com/echocache/echocache/examples/internal/demo\"\n)\n", true},
		{"return c.String(http.StatusOK, time.Now().Format(time.RFC3339Nano))\n", false},
		{"nodemo.Run()\n", false},
	} {
		if got := usesInternal(tt.block, internal) != ""; got != tt.bad {
			t.Errorf("usesInternal(%q) = %v; want %v", tt.block, got, tt.bad)
		}
	}
}

// TestReadmeCommands checks the README's go run commands name examples
// that exist, and that every example is in the README.
func TestReadmeCommands(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	run := regexp.MustCompile(`go run \./examples/([a-z0-9-]+)`)
	named := map[string]bool{}
	for _, m := range run.FindAllStringSubmatch(string(readme), -1) {
		named[m[1]] = true
		if _, err := os.Stat(filepath.Join("..", "examples", m[1], "main.go")); err != nil {
			t.Errorf("README runs ./examples/%s, which does not exist: %v", m[1], err)
		}
	}
	for _, name := range examples {
		if !named[name] {
			t.Errorf("README has no `go run ./examples/%s`", name)
		}
	}
	if !strings.Contains(string(readme), "go run ./examples/cached-app\n") || !strings.Contains(string(readme), "make test\n") {
		t.Error("README lacks the run command (go run ./examples/cached-app) or the test command (make test)")
	}
}

type block struct {
	line int
	text string
}

// codeBlocks returns the fenced code blocks of markdown in language lang.
func codeBlocks(markdown, lang string) []block {
	var out []block
	var cur *block
	var text strings.Builder
	sc := bufio.NewScanner(strings.NewReader(markdown))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```"+lang:
			cur = &block{line: n}
			text.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.text = text.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			text.WriteString(line + "\n")
		}
	}
	return out
}

// normalize returns the lines of src without indentation or trailing
// space, and without blank lines.
func normalize(src string) []string {
	var out []string
	for _, l := range strings.Split(src, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// contains reports whether lines appear in src, in order and contiguous.
func contains(src, lines []string) bool {
	for i := 0; i+len(lines) <= len(src); i++ {
		if equal(src[i:i+len(lines)], lines) {
			return true
		}
	}
	return len(lines) == 0
}

func equal(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReadmeConfigTables checks that the README's configuration reference
// has a row for every exported field of echocache.Config and
// echocache.RouteConfig.
func TestReadmeConfigTables(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[echocache.Config](), reflect.TypeFor[echocache.RouteConfig]()} {
		for f := range typ.Fields() {
			if f.IsExported() && !strings.Contains(string(readme), "| `"+f.Name+"` |") {
				t.Errorf("README has no table row for %s.%s", typ.Name(), f.Name)
			}
		}
	}
}
