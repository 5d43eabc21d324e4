package notify_test

import (
	"testing"

	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
)

func TestMemoryOutbox(t *testing.T) {
	notifytest.OutboxSuite(t, func(*testing.T) notify.Outbox { return &notify.MemoryOutbox{} })
}
