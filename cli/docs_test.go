package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestDocsCoverEveryCommand keeps docs/cli.md in step with the commands:
// each command has an example line and each flag is mentioned.
func TestDocsCoverEveryCommand(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	docs := string(b)
	a := &app{env: Env{Getenv: func(string) string { return "" }}}
	visit(a.rootCommand(), func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if !strings.Contains(docs, c.CommandPath()) {
			t.Errorf("docs/cli.md does not show %q", c.CommandPath())
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !strings.Contains(docs, "--"+f.Name) {
				t.Errorf("docs/cli.md does not mention %s --%s", c.CommandPath(), f.Name)
			}
		})
	})
	for _, v := range []string{EnvURL, EnvToken, EnvConfig, EnvDatabase, EnvListen} {
		if !strings.Contains(docs, v) {
			t.Errorf("docs/cli.md does not mention %s", v)
		}
	}
	for code := ExitOK; code <= ExitUnavailable; code++ {
		if !strings.Contains(docs, "\n| "+string(rune('0'+code))+" | ") {
			t.Errorf("docs/cli.md does not explain exit code %d", code)
		}
	}
}
