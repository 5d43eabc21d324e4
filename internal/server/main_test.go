package server

import (
	"os"
	"testing"

	"github.com/canaryd/canaryd/internal/store/pgtest"
)

// pg is the PostgreSQL cluster of the tests that run several replicas; it
// starts on first use.
var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}
