package alerting

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/store"
)

// BenchmarkFollow measures the follower: events appended in batches of 100,
// then one pump enqueues them for two channels. Reported per event.
func BenchmarkFollow(b *testing.B) {
	for _, be := range backends(nil) {
		b.Run(be.name, func(b *testing.B) {
			st, _ := be.open(b)
			cfg := &config.Alerts{Channels: []notify.ChannelConfig{
				{Name: "ops", Kind: notify.KindSlack, URL: "http://127.0.0.1:1/slack"},
				{Name: "dev", Kind: notify.KindWebhook, URL: "http://127.0.0.1:1/hook", Secret: "k"},
			}}
			s, err := New(b.Context(), Options{Store: st, Config: cfg, Dispatch: fast})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 100 {
				b.StopTimer()
				err := st.Update(ctx, func(tx store.Tx) error {
					for j := range 100 {
						if _, err := tx.AppendEvent(ctx, event.Event{Service: "api", Type: event.RolledBack, Reason: fmt.Sprint(i + j)}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := s.pump(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDeliver measures the outbox round trip of one delivery:
// Enqueue, Claim, MarkSent (the provider itself left out).
func BenchmarkDeliver(b *testing.B) {
	for _, be := range backends(nil) {
		b.Run(be.name, func(b *testing.B) {
			st, _ := be.open(b)
			ob := NewOutbox(st)
			ctx := context.Background()
			t0 := time.Now()
			b.ReportAllocs()
			for i := range b.N {
				if _, _, err := ob.Enqueue(ctx, notify.Delivery{Channel: "ops", Key: fmt.Sprint(i), Count: 1, FirstSeen: t0, NextAttempt: t0}, 0); err != nil {
					b.Fatal(err)
				}
				ds, err := ob.Claim(ctx, t0, t0.Add(time.Minute), 1)
				if err != nil || len(ds) != 1 {
					b.Fatal(len(ds), err)
				}
				if err := ob.MarkSent(ctx, ds[0].ID, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
