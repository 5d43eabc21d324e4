package docs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadmeQuickstart does what a newcomer does: clone the repository,
// read the two commands in the README, and run the first one (the demo),
// then the faulty variant the README describes. The demo must end
// promoted, and rolled back with a faulty canary. The only liberty taken is
// DEMO_ARGS, which moves the demo to free ports so a busy machine cannot
// make it fail.
func TestReadmeQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo twice from a fresh clone")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(t.TempDir(), "canaryd")
	if out, err := exec.Command("git", "clone", "-q", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	readme, err := os.ReadFile(filepath.Join(clone, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := twoCommands(t, string(readme))
	if cmds[0] != "make demo" || cmds[1] != "make test" {
		t.Fatalf("the README's two commands are %q, want make demo and make test", cmds)
	}
	for _, tc := range []struct{ target, want string }{
		{"demo", "Outcome: PROMOTED"},
		{"demo-faulty", "Outcome: ROLLED BACK"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "make", tc.target)
		cmd.Dir = clone
		cmd.Env = append(os.Environ(), "DEMO_ARGS=--listen 127.0.0.1:0 --admin 127.0.0.1:0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil || !strings.Contains(out.String(), tc.want) {
			t.Fatalf("make %s: %v; want %q in the output:\n%s", tc.target, err, tc.want, tail(out.String(), 3000))
		}
	}
}

// twoCommands returns the commands of the first shell block under the
// README's "Two commands" heading, without their comments.
func twoCommands(t *testing.T, readme string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "## Two commands")
	if !ok {
		t.Fatal(`README.md has no "## Two commands" section`)
	}
	_, rest, _ = strings.Cut(rest, "```sh\n")
	block, _, _ := strings.Cut(rest, "```")
	var cmds []string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		cmd, _, _ := strings.Cut(line, "#")
		cmds = append(cmds, strings.TrimSpace(cmd))
	}
	if len(cmds) != 2 {
		t.Fatalf("want two commands, got %q", cmds)
	}
	return cmds
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
