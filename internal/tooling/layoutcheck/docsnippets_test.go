package layoutcheck

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every Go code block of README.md and docs/*.md is compiled against the
// module, so that a snippet a reader pastes builds as shown. A block whose
// first line (after comments) is a package clause is a whole file and is
// compiled as it stands. Any other block is a fragment: the statements of
// a function body, compiled with the imports and the names of preamble in
// scope (docs/sdk.md states the same convention for its readers). Each
// block is built in a package of its own.

// snippet is one Go code block of a Markdown file.
type snippet struct {
	file string // relative to the module root
	line int    // of the block's first code line
	code string
}

// extract returns the ```go blocks of a Markdown file.
func extract(t *testing.T, root, rel string) []snippet {
	t.Helper()
	f, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out  []snippet
		cur  *snippet
		code strings.Builder
		n    int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```go":
			cur = &snippet{file: rel, line: n + 1}
			code.Reset()
		case cur != nil && trimmed == "```":
			cur.code = code.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			code.WriteString(line)
			code.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: Go block never closed", rel, cur.line)
	}
	return out
}

var packageClause = regexp.MustCompile(`(?m)^package \w+`)

// isFile reports whether a block is a whole file: its first line that is
// not blank or a comment is a package clause.
func isFile(code string) bool {
	for line := range strings.Lines(code) {
		s := strings.TrimSpace(line)
		if s == "" || strings.HasPrefix(s, "//") {
			continue
		}
		return packageClause.MatchString(s)
	}
	return false
}

// source is the Go file a snippet is built as. A //line directive makes the
// compiler report errors at the Markdown file's lines.
func source(s snippet) string {
	if isFile(s.code) {
		return fmt.Sprintf("//line %s:%d\n%s", s.file, s.line, s.code)
	}
	return fmt.Sprintf("package snippet\n\n%s//line %s:%d\n%s\treturn nil\n}\n", preamble, s.file, s.line, s.code)
}

// goDirective returns the go line of the module's go.mod.
func goDirective(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// TestDocSnippetsCompile builds every Go block of README.md and docs/*.md,
// each as a package of one temporary module that requires this one
// (replaced by the working tree), with one go build, offline.
func TestDocSnippetsCompile(t *testing.T) {
	root := repoRoot(t)
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	for _, d := range docs {
		rel, _ := filepath.Rel(root, d)
		files = append(files, rel)
	}
	var snippets []snippet
	for _, f := range files {
		snippets = append(snippets, extract(t, root, f)...)
	}
	// README.md and docs/sdk.md hold at least one each; fewer means the
	// extraction is wrong, not that there is nothing to check.
	perFile := map[string]int{}
	for _, s := range snippets {
		perFile[s.file]++
	}
	if perFile["README.md"] == 0 || perFile[filepath.Join("docs", "sdk.md")] < 5 {
		t.Fatalf("found %v Go blocks per file; the extraction is wrong", perFile)
	}

	dir := t.TempDir()
	gomod := fmt.Sprintf("module mamba.example/docsnippets\n\ngo %s\n\nrequire github.com/mambamq/mamba v0.0.0\n\nreplace github.com/mambamq/mamba => %s\n",
		goDirective(t, root), root)
	write(t, filepath.Join(dir, "go.mod"), gomod)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "go.sum"), string(sum))
	for i, s := range snippets {
		write(t, filepath.Join(dir, fmt.Sprintf("s%03d", i), "snippet.go"), source(s))
	}

	cmd := exec.Command("go", "build", "./...")
	cmd.Dir = dir
	// Independent of the caller's GOFLAGS and workspace; -mod=mod lets go
	// add the requirements the snippets' imports need from the module
	// graph; GOPROXY=off keeps it to the module cache.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%d Go blocks of %v do not compile (paths are those of the Markdown files):\n%s", len(snippets), files, out)
	}
	t.Logf("%d Go blocks compiled: %v", len(snippets), perFile)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// preamble is what a fragment may use without declaring it: these
// packages, and these parameters of the function it is the body of. A
// fragment may return an error.
const preamble = `import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/mambamq/mamba/client"
)

var (
	_ = context.Background
	_ = errors.New
	_ = fmt.Sprint
	_ = log.Print
	_ = slog.Default
	_ = http.NewRequest
	_ = os.Exit
	_ = time.Now
	_ = client.New
)

func fragment(
	ctx context.Context,
	c *client.Client,
	p *client.Producer,
	g *client.GroupConsumer,
	rec client.Record,
	body []byte,
	handle func(client.ConsumedRecord),
	token func() string,
) error {
`
