package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

// Bench measures the operations the control plane does most, on a store
// from newStore (fresh and empty, closed by its own cleanup):
//
//   - Change: one operator change (read service, write it, append event);
//   - Heartbeat: one endpoint heartbeat (a quiet write);
//   - Snapshot: the read that rebuilds routing (all services and builds);
//   - Events: one page of 100 events of a service;
//   - Publish: one replica's analysis for one release and second (two
//     bins, a mark, a batch of 20 first events), as every replica writes
//     each second;
//   - PeerRead: the leader's read of it each second (marks, the last
//     second's bins of 4 replicas, new first events).
func Bench(b *testing.B, newStore func(b *testing.B) store.Store) {
	ctx := context.Background()
	setup := func(b *testing.B) store.Store {
		s := newStore(b)
		err := s.Update(ctx, func(tx store.Tx) error {
			for i := range 10 {
				svc := fmt.Sprintf("svc%d", i)
				if _, err := tx.PutService(ctx, store.Service{Name: svc}); err != nil {
					return err
				}
				for j := range 3 {
					bd := store.Build{Service: svc, ID: fmt.Sprint(j), State: store.StateDeployed,
						Endpoints: []store.Endpoint{{Addr: "10.0.0.1:80", TTL: time.Minute}, {Addr: "10.0.0.2:80", TTL: time.Minute}}}
					if _, err := tx.PutBuild(ctx, bd); err != nil {
						return err
					}
				}
			}
			for i := range 500 {
				if _, err := tx.AppendEvent(ctx, event.Event{Service: "svc0", Type: event.Test, Reason: fmt.Sprint(i)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	b.Run("Change", func(b *testing.B) {
		s := setup(b)
		b.ReportAllocs()
		for b.Loop() {
			err := s.Update(ctx, func(tx store.Tx) error {
				sv, err := tx.GetService(ctx, "svc1")
				if err != nil {
					return err
				}
				sv.Traffic = float64(int(sv.Traffic+1) % 100)
				if _, err := tx.PutService(ctx, sv); err != nil {
					return err
				}
				_, err = tx.AppendEvent(ctx, event.Event{Service: "svc1", Type: event.TrafficChanged})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Heartbeat", func(b *testing.B) {
		s := setup(b)
		at := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			at = at.Add(time.Millisecond)
			err := s.Update(ctx, func(tx store.Tx) error {
				_, err := tx.TouchEndpoint(ctx, "svc2", "1", "10.0.0.1:80", at)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Snapshot", func(b *testing.B) {
		s := setup(b)
		b.ReportAllocs()
		for b.Loop() {
			err := s.View(ctx, func(r store.Reader) error {
				if _, err := r.ListServices(ctx); err != nil {
					return err
				}
				_, err := r.ListBuilds(ctx, store.BuildFilter{})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Publish", func(b *testing.B) {
		s := setup(b)
		lat := []byte{1, 5, 3, 1, 7, 2, 1, 40}
		events := make([]byte, 1+9*20)
		sec := int64(1_700_000_000)
		b.ReportAllocs()
		for b.Loop() {
			sec++
			err := s.Update(ctx, func(tx store.Tx) error {
				return tx.PublishAnalysis(ctx,
					[]store.AnalysisBin{{Replica: "r1", Service: "svc0", Build: "1", End: sec, Requests: 900, Errors: 4, Latency: lat},
						{Replica: "r1", Service: "svc0", Build: "2", End: sec, Requests: 100, Errors: 1, Latency: lat}},
					[]store.AnalysisMark{{Replica: "r1", Service: "svc0", Through: sec, At: time.Unix(sec, 0)}},
					[]store.AnalysisEvents{{Release: "rel", Replica: "r1", Events: events}})
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PeerRead", func(b *testing.B) {
		s := setup(b)
		const sec = int64(1_700_000_000)
		err := s.Update(ctx, func(tx store.Tx) error {
			for r := range 4 {
				replica := fmt.Sprint("r", r)
				for k := range int64(600) { // ten minutes of bins, as retention keeps
					bins := []store.AnalysisBin{{Replica: replica, Service: "svc0", Build: "1", End: sec + k, Requests: 900, Latency: []byte{1}},
						{Replica: replica, Service: "svc0", Build: "2", End: sec + k, Requests: 100, Latency: []byte{1}}}
					if err := tx.PublishAnalysis(ctx, bins, nil, nil); err != nil {
						return err
					}
				}
				if err := tx.PublishAnalysis(ctx, nil, []store.AnalysisMark{{Replica: replica, Service: "svc0", Through: sec + 599, At: time.Unix(sec+599, 0)}}, nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			err := s.View(ctx, func(r store.Reader) error {
				if _, err := r.ListAnalysisMarks(ctx, "svc0"); err != nil {
					return err
				}
				if _, err := r.ListAnalysisBins(ctx, "svc0", sec+598, sec+599); err != nil {
					return err
				}
				_, err := r.ListAnalysisEvents(ctx, "rel", 0, 1000)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Events", func(b *testing.B) {
		s := setup(b)
		b.ReportAllocs()
		for b.Loop() {
			err := s.View(ctx, func(r store.Reader) error {
				_, err := r.ListEvents(ctx, store.EventQuery{Service: "svc0", Desc: true, Limit: 100})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
