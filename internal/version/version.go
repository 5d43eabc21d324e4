// Package version reports what binary this is: the release version set at
// link time and the VCS commit the Go toolchain records.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at link time: -ldflags "-X github.com/canaryd/canaryd/internal/version.Version=1.0.0".
var Version = "dev"

// BuildCommit may be set at link time (-X ...version.BuildCommit=$(git
// rev-parse --short HEAD)) where the toolchain cannot stamp the commit: a
// build without the .git directory, or with -buildvcs=false.
var BuildCommit = ""

// Commit returns the VCS revision the binary was built from (with "+dirty"
// when the tree had changes), or "unknown".
func Commit() string {
	if BuildCommit != "" {
		return BuildCommit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "unknown", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}

// String is the one-line version report.
func String(binary string) string {
	return fmt.Sprintf("%s %s (commit %s, %s, %s/%s)", binary, Version, Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
