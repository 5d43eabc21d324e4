package alerting

import (
	"errors"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
	"github.com/canaryd/canaryd/internal/store"
)

// TestOutboxSuite runs notify's Outbox contract against both stores.
func TestOutboxSuite(t *testing.T) {
	for _, b := range backends(nil) {
		t.Run(b.name, func(t *testing.T) {
			notifytest.OutboxSuite(t, func(t *testing.T) notify.Outbox {
				st, _ := b.open(t)
				return NewOutbox(st)
			})
		})
	}
}

// TestOutboxListAndPrune checks what the contract suite does not: listing
// dead letters, pruning sent deliveries and keeping dead ones.
func TestOutboxListAndPrune(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, b := range backends(nil) {
		t.Run(b.name, func(t *testing.T) {
			st, _ := b.open(t)
			ob := NewOutbox(st)
			ctx := t.Context()
			for _, k := range []string{"a", "b"} {
				if _, _, err := ob.Enqueue(ctx, notify.Delivery{Channel: "ops", Key: k, Count: 1, FirstSeen: t0, NextAttempt: t0,
					Message: notify.Message{Title: "title " + k}}, 0); err != nil {
					t.Fatal(err)
				}
			}
			ds, err := ob.Claim(ctx, t0, t0.Add(time.Minute), 10)
			if err != nil || len(ds) != 2 {
				t.Fatalf("Claim = %d, %v", len(ds), err)
			}
			if err := ob.MarkSent(ctx, ds[0].ID, t0); err != nil {
				t.Fatal(err)
			}
			if err := ob.MarkDead(ctx, ds[1].ID, 3, t0, "status 404"); err != nil {
				t.Fatal(err)
			}
			dead, err := ob.List(ctx, store.AlertQuery{States: []store.AlertState{store.AlertDead}})
			if err != nil || len(dead) != 1 || dead[0].LastError != "status 404" || dead[0].Attempts != 3 || dead[0].Message.Title != "title b" {
				t.Fatalf("dead = %+v, %v", dead, err)
			}
			n, err := ob.Prune(ctx, t0.Add(time.Second))
			if err != nil || n != 1 {
				t.Fatalf("Prune = %d, %v; want 1", n, err)
			}
			all, _ := ob.List(ctx, store.AlertQuery{})
			if len(all) != 1 || all[0].State != notify.StateDead {
				t.Fatalf("after prune: %+v", all)
			}
			if err := ob.MarkSent(ctx, 12345, t0); !errors.Is(err, notify.ErrUnknownDelivery) {
				t.Fatalf("MarkSent(unknown) = %v", err)
			}
		})
	}
}
