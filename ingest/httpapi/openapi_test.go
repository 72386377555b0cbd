package httpapi

import (
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mambamq/mamba/internal/wire"
)

// openAPIDoc is the part of docs/openapi.yaml these tests read.
type openAPIDoc struct {
	OpenAPI    string                          `yaml:"openapi"`
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		Schemas struct {
			Error struct {
				Properties struct {
					Error struct {
						Properties struct {
							Code struct {
								Enum []string `yaml:"enum"`
							} `yaml:"code"`
							Quota struct {
								Enum []string `yaml:"enum"`
							} `yaml:"quota"`
						} `yaml:"properties"`
					} `yaml:"error"`
				} `yaml:"properties"`
			} `yaml:"Error"`
			TokenQuotas struct {
				Properties yaml.Node `yaml:"properties"`
			} `yaml:"TokenQuotas"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func readOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi version %q, want 3.1.x", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIMatchesRoutes checks that every route NewHandler registers is
// in docs/openapi.yaml and that every operation there is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := readOpenAPI(t)
	var documented []string
	for path, item := range doc.Paths {
		for key := range item {
			switch key {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				documented = append(documented, strings.ToUpper(key)+" "+path)
			}
		}
	}
	slices.Sort(documented)

	h := NewHandler(&scriptedService{}, Options{}, nil, nil, nil).(*handler)
	var registered []string
	for pattern := range h.routeOf {
		registered = append(registered, pattern)
	}
	slices.Sort(registered)
	if !slices.Equal(documented, registered) {
		t.Errorf("docs/openapi.yaml and NewHandler disagree:\ndocumented %q\nregistered %q", documented, registered)
	}

	// Each documented operation reaches its own pattern in the handler.
	fill := strings.NewReplacer("{topic}", "orders", "{partition}", "0")
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		_, pattern := h.mux.Handler(httptest.NewRequest(method, fill.Replace(path), nil))
		if pattern != op {
			t.Errorf("%s is served by pattern %q", op, pattern)
		}
	}
}

// TestDocsListEveryErrorCode checks the error codes in docs/openapi.yaml and
// docs/api.md against ErrorCodes.
func TestDocsListEveryErrorCode(t *testing.T) {
	var codes []string
	for _, c := range wire.Codes() {
		codes = append(codes, c.Code)
	}
	if enum := readOpenAPI(t).Components.Schemas.Error.Properties.Error.Properties.Code.Enum; !slices.Equal(enum, codes) {
		t.Errorf("openapi.yaml Error code enum %q, want %q", enum, codes)
	}
	md, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range wire.Codes() {
		row := "| " + strconv.Itoa(c.Status) + " | `" + c.Code + "` | " + strings.ReplaceAll(c.Meaning, "Retry-After", "`Retry-After`")
		row = strings.NewReplacer("Allow header", "`Allow` header", "application/json", "`application/json`", "application/vnd.mamba.v1+binary", "`application/vnd.mamba.v1+binary`", "Idempotency-Key", "`Idempotency-Key`").Replace(row)
		if !strings.Contains(string(md), row) {
			t.Errorf("docs/api.md has no error table row %q", row)
		}
	}
}

// TestDocsListEveryQuota checks the quota names of docs/openapi.yaml (the
// error's quota enum, the TokenQuotas properties, in order) against
// wire.QuotaNames.
func TestDocsListEveryQuota(t *testing.T) {
	doc := readOpenAPI(t)
	if enum := doc.Components.Schemas.Error.Properties.Error.Properties.Quota.Enum; !slices.Equal(enum, wire.QuotaNames()) {
		t.Errorf("openapi.yaml Error quota enum %q, want %q", enum, wire.QuotaNames())
	}
	var props []string
	nodes := doc.Components.Schemas.TokenQuotas.Properties.Content
	for i := 0; i < len(nodes); i += 2 {
		props = append(props, nodes[i].Value)
	}
	if !slices.Equal(props, wire.QuotaNames()) {
		t.Errorf("openapi.yaml TokenQuotas properties %q, want %q", props, wire.QuotaNames())
	}
}
