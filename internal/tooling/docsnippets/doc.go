// Package docsnippets holds the test that compiles every Go code block of
// README.md and docs/*.md against the module, so that a snippet a reader
// pastes builds as shown.
//
// A block whose first line (after comments) is a package clause is a whole
// file and is compiled as it stands. Any other block is a fragment: the
// statements of a function body, compiled with the imports and the names
// listed in Preamble in scope (docs/sdk.md states the same convention for
// its readers). Each block is built in a package of its own.
package docsnippets

// Preamble is what a fragment may use without declaring it: these
// packages, and these parameters of the function it is the body of. A
// fragment may return an error.
const Preamble = `import (
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
