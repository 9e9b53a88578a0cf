package integration

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeCodeIsReal checks that every Go code block of the README is
// real code: its lines appear, in order and contiguous, in a Go file of the
// repository (an example program or a runnable Example function), where
// the compiler and the tests check them. Indentation is ignored so that a
// block can show part of a function. HTML blocks must likewise come from
// the examples' templates.
func TestReadmeCodeIsReal(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string][][]string{} // by extension
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
			sources[ext] = append(sources[ext], normalize(string(src)))
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
			if !anyContains(sources["."+lang], normalize(b.text)) {
				t.Errorf("README line %d: this %s block is not in any .%s file of the repository:\n%s", b.line, lang, lang, b.text)
			}
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

func anyContains(sources [][]string, lines []string) bool {
	for _, src := range sources {
		for i := 0; i+len(lines) <= len(src); i++ {
			if equal(src[i:i+len(lines)], lines) {
				return true
			}
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
