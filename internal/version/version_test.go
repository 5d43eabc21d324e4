package version

import (
	"strings"
	"testing"
)

func TestStringNamesTheCommit(t *testing.T) {
	BuildCommit = "abc1234"
	defer func() { BuildCommit = "" }()
	if s := String("canaryd"); !strings.Contains(s, "commit abc1234") || !strings.HasPrefix(s, "canaryd "+Version) {
		t.Fatalf("String = %q", s)
	}
}
