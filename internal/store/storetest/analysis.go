package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/store"
)

// testAnalysis covers what replicas publish for the leader's judge: bins
// replaced by key and listed by time window, marks, batches of first events
// paged by ID, pruning that keeps an active release's events, and that
// publishing is silent on the change feed.
func testAnalysis(t *testing.T, s store.Store, clock *Clock) {
	ctx := t.Context()
	feed := s.Subscribe(ctx)
	bin := func(replica, build string, end int64, req, errs uint64) store.AnalysisBin {
		return store.AnalysisBin{Replica: replica, Service: "api", Build: build, End: end, Requests: req, Errors: errs, Latency: []byte{1, byte(end), 3}}
	}
	first := []store.AnalysisBin{bin("r2", "v2", 100, 5, 1), bin("r1", "v1", 100, 90, 0), bin("r1", "v2", 100, 10, 1), bin("r1", "v2", 101, 12, 0)}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PublishAnalysis(ctx, first, []store.AnalysisMark{{Replica: "r1", Service: "api", Through: 101, At: clock.Now(), Users: []byte("u1"), Harmed: []byte("h1")}},
			[]store.AnalysisEvents{{Release: "rel-1", Replica: "r1", Events: []byte("abc")}})
	})
	// A replica re-publishing a bin replaces it; a second replica's mark.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PublishAnalysis(ctx, []store.AnalysisBin{bin("r2", "v2", 100, 7, 2), {Replica: "r2", Service: "other", Build: "x", End: 100}},
			[]store.AnalysisMark{{Replica: "r2", Service: "api", Through: 100, At: clock.Now()}, {Replica: "r1", Service: "api", Through: 102, At: clock.Now()}},
			[]store.AnalysisEvents{{Release: "rel-1", Replica: "r2", Events: []byte("de")}, {Release: "rel-2", Replica: "r2", Events: []byte("f")}})
	})
	select {
	case c := <-feed:
		t.Fatalf("publishing analysis published change %+v on the change feed", c)
	case <-time.After(100 * time.Millisecond):
	}

	view(t, s, func(ctx context.Context, r store.Reader) error {
		bins, err := r.ListAnalysisBins(ctx, "api", 99, 100)
		if err != nil {
			return err
		}
		want := []store.AnalysisBin{bin("r1", "v1", 100, 90, 0), bin("r1", "v2", 100, 10, 1), bin("r2", "v2", 100, 7, 2)}
		if !reflect.DeepEqual(bins, want) {
			t.Errorf("bins in (99, 100] = %+v, want %+v", bins, want)
		}
		if bins, err = r.ListAnalysisBins(ctx, "api", 100, 200); err != nil || len(bins) != 1 || bins[0].End != 101 {
			t.Errorf("bins in (100, 200] = %+v, %v; want the one ending at 101", bins, err)
		}
		marks, err := r.ListAnalysisMarks(ctx, "api")
		if err != nil {
			return err
		}
		at := clock.Now().UTC().Truncate(time.Microsecond)
		wantMarks := []store.AnalysisMark{{Replica: "r1", Service: "api", Through: 102, At: at}, {Replica: "r2", Service: "api", Through: 100, At: at}}
		if len(marks) != 2 || marks[0].Through != 102 || marks[1].Through != 100 || !marks[0].At.Equal(at) || marks[0].Replica != "r1" {
			t.Errorf("marks = %+v, want %+v", marks, wantMarks)
		} else if string(marks[0].Users) != "u1" || string(marks[0].Harmed) != "h1" || marks[1].Users != nil {
			t.Errorf("mark sketches: r1 users %q harmed %q (want u1, h1 kept by a mark without sketches), r2 users %q (want none)",
				marks[0].Users, marks[0].Harmed, marks[1].Users)
		}
		evs, err := r.ListAnalysisEvents(ctx, "rel-1", 0, 10)
		if err != nil {
			return err
		}
		if len(evs) != 2 || string(evs[0].Events) != "abc" || evs[0].Replica != "r1" || string(evs[1].Events) != "de" || evs[1].ID <= evs[0].ID || evs[0].CreatedAt.IsZero() {
			t.Fatalf("events of rel-1 = %+v, want abc from r1 then de from r2", evs)
		}
		if more, err := r.ListAnalysisEvents(ctx, "rel-1", evs[0].ID, 10); err != nil || len(more) != 1 || string(more[0].Events) != "de" {
			t.Errorf("events after %d = %+v, %v; want de only", evs[0].ID, more, err)
		}
		return nil
	})

	// Bad input names what is missing and leaves nothing behind.
	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.PublishAnalysis(ctx, []store.AnalysisBin{bin("r3", "v2", 200, 1, 0), {Service: "api", Build: "v2", End: 201}}, nil, nil)
	})
	wantErr(t, "bin without replica", err, store.ErrInvalid)
	view(t, s, func(ctx context.Context, r store.Reader) error {
		if bins, err := r.ListAnalysisBins(ctx, "api", 199, 300); err != nil || len(bins) != 0 {
			t.Errorf("a rejected publication left bins %+v (%v)", bins, err)
		}
		return nil
	})

	// Prune: old bins and marks go; events of an active release stay, of
	// an ended (or unknown) one go.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.PutService(ctx, store.Service{Name: "api"})
		if err != nil {
			return err
		}
		_, err = tx.PutRelease(ctx, store.Release{ID: "rel-1", Service: "api", Build: "v2", Status: store.ReleaseRunning})
		return err
	})
	clock.Advance(time.Hour)
	var n int64
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		n, err = tx.PruneAnalysis(ctx, clock.Now().Add(-time.Minute))
		return err
	})
	view(t, s, func(ctx context.Context, r store.Reader) error {
		if bins, _ := r.ListAnalysisBins(ctx, "api", 0, 1000); len(bins) != 0 {
			t.Errorf("after prune, bins %+v remain", bins)
		}
		if marks, _ := r.ListAnalysisMarks(ctx, "api"); len(marks) != 0 {
			t.Errorf("after prune, marks %+v remain", marks)
		}
		if evs, _ := r.ListAnalysisEvents(ctx, "rel-1", 0, 10); len(evs) != 2 {
			t.Errorf("after prune, the running release has %d batches of events, want 2 (kept)", len(evs))
		}
		if evs, _ := r.ListAnalysisEvents(ctx, "rel-2", 0, 10); len(evs) != 0 {
			t.Errorf("after prune, release rel-2 (not active) still has %d batches", len(evs))
		}
		return nil
	})
	if want := int64(5 + 2 + 1); n != want { // five bins, two marks, rel-2's batch
		t.Errorf("PruneAnalysis deleted %d rows, want %d", n, want)
	}
}
