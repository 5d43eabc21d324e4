// Command canaryd is the progressive-delivery gateway: see `canaryd --help`.
package main

import (
	"os"

	"github.com/canaryd/canaryd/internal/cli/canaryd"
)

func main() { os.Exit(canaryd.Run(os.Args[1:], os.Stdout, os.Stderr)) }
