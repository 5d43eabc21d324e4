package canaryctl

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// docs/cli.md documents every command and every exit code.
func TestDocsCoverEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	root := (&app{getenv: func(string) string { return "" }}).rootCmd()
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() || sub.Name() == "help" {
				continue
			}
			if sub.HasSubCommands() {
				walk(sub)
				continue
			}
			path := strings.TrimPrefix(sub.CommandPath(), "canaryctl ")
			if sub.Parent() != root && sub.Parent().Name() == "completion" {
				continue
			}
			if !strings.Contains(doc, "### "+path) && !strings.Contains(doc, ", "+path) {
				t.Errorf("docs/cli.md has no section for %q", path)
			}
			sub.Flags().VisitAll(func(f *pflag.Flag) {
				if f.Name != "help" && !strings.Contains(doc, "--"+f.Name) {
					t.Errorf("docs/cli.md does not mention %s --%s", path, f.Name)
				}
			})
		}
	}
	walk(root)
	for _, code := range []string{"| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 4 |"} {
		if !strings.Contains(doc, code) {
			t.Errorf("docs/cli.md: exit code row %q missing", code)
		}
	}
}
