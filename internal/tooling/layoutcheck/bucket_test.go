package layoutcheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// layoutPrefixes are the key prefixes of the bucket layout, which package
// bucket alone spells.
var layoutPrefixes = []string{"chunks/", "topics/", "checkpoints/"}

// TestBucketLayoutHasOneOwner fails when a production file outside
// package bucket has a string literal that starts with a prefix of the
// bucket layout: keys are made and parsed by package bucket only, so that
// the layout cannot drift between the writer (ingest) and the readers
// (restore, dr).
func TestBucketLayoutHasOneOwner(t *testing.T) {
	root := repoRoot(t)
	owner := filepath.Join(root, "bucket")
	fset := token.NewFileSet()
	for _, path := range productionFiles(t) {
		if filepath.Dir(path) == owner {
			continue
		}
		rel, _ := filepath.Rel(root, path)
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", rel, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, p := range layoutPrefixes {
				if strings.HasPrefix(s, p) {
					t.Errorf("%s: string %q spells the bucket key prefix %q: use package bucket", fset.Position(lit.Pos()), s, p)
				}
			}
			return true
		})
	}
}
