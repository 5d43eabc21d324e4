package notifytest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/notify"
)

// OutboxSuite checks an Outbox implementation against the contract written
// on notify.Outbox. The store runs it for SQLite and PostgreSQL as
// notify's own tests run it for MemoryOutbox; newOutbox must return an
// empty outbox each call.
func OutboxSuite(t *testing.T, newOutbox func(t *testing.T) notify.Outbox) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	lease := t0.Add(time.Hour)
	del := func(ch, key string, at time.Time) notify.Delivery {
		return notify.Delivery{Channel: ch, Key: key, Count: 1, FirstSeen: at, LastSeen: at, NextAttempt: at,
			Message: notify.Message{Service: "api", Title: "t " + key}}
	}
	enqueue := func(t *testing.T, ob notify.Outbox, d notify.Delivery, throttle time.Duration) (int64, bool) {
		t.Helper()
		id, merged, err := ob.Enqueue(ctx, d, throttle)
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		return id, merged
	}
	claim := func(t *testing.T, ob notify.Outbox, now time.Time) []notify.Delivery {
		t.Helper()
		ds, err := ob.Claim(ctx, now, now.Add(time.Hour), 100)
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		return ds
	}

	t.Run("merge pending by channel and key", func(t *testing.T) {
		ob := newOutbox(t)
		a, merged := enqueue(t, ob, del("ops", "k", t0), time.Minute)
		if merged {
			t.Fatal("first enqueue merged")
		}
		d := del("ops", "k", t0.Add(time.Second))
		d.Count = 4
		if b, merged := enqueue(t, ob, d, time.Minute); !merged || b != a {
			t.Fatalf("repeat: id %d merged %v, want %d true", b, merged, a)
		}
		if c, merged := enqueue(t, ob, del("other", "k", t0), time.Minute); merged || c == a {
			t.Fatal("other channel merged")
		}
		ds := claim(t, ob, t0.Add(time.Second))
		if len(ds) != 2 {
			t.Fatalf("claimed %d, want 2", len(ds))
		}
		for _, d := range ds {
			if d.ID == a && (d.Count != 5 || !d.LastSeen.Equal(t0.Add(time.Second)) || !d.FirstSeen.Equal(t0)) {
				t.Errorf("merged delivery count %d first %v last %v, want 5, t0, t0+1s", d.Count, d.FirstSeen, d.LastSeen)
			}
			if d.State != notify.StateSending || !d.NextAttempt.Equal(t0.Add(time.Second+time.Hour)) {
				t.Errorf("claimed state %q next %v", d.State, d.NextAttempt)
			}
			if d.Message.Title != "t k" {
				t.Errorf("message not stored: %+v", d.Message)
			}
		}
	})

	t.Run("claim due only, oldest first, limit, lease", func(t *testing.T) {
		ob := newOutbox(t)
		for i, off := range []time.Duration{3, 1, 2, 10} {
			enqueue(t, ob, del("ops", string(rune('a'+i)), t0.Add(off*time.Second)), 0)
		}
		ds, err := ob.Claim(ctx, t0.Add(5*time.Second), lease, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 2 || ds[0].Key != "b" || ds[1].Key != "c" {
			t.Fatalf("claimed %v, want keys b, c", keys(ds))
		}
		if ds := claim(t, ob, t0.Add(5*time.Second)); len(ds) != 1 || ds[0].Key != "a" {
			t.Fatalf("second claim %v, want a only (b, c leased; d not due)", keys(ds))
		}
		if ds := claim(t, ob, lease); len(ds) != 3 {
			t.Fatalf("claim at lease end %v, want b, c (expired lease) and d", keys(ds))
		}
	})

	t.Run("throttle after sent and while sending", func(t *testing.T) {
		ob := newOutbox(t)
		id, _ := enqueue(t, ob, del("ops", "k", t0), 10*time.Minute)
		claim(t, ob, t0)
		// While sending: a repeat makes a new delivery, throttled from now.
		id2, merged := enqueue(t, ob, del("ops", "k", t0.Add(time.Second)), 10*time.Minute)
		if merged || id2 == id {
			t.Fatal("repeat merged into a sending delivery")
		}
		if err := ob.MarkSent(ctx, id, t0.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		if ds := claim(t, ob, t0.Add(10*time.Minute)); len(ds) != 0 {
			t.Fatalf("throttled repeat claimed early: %v", keys(ds))
		}
		if ds := claim(t, ob, t0.Add(10*time.Minute+2*time.Second)); len(ds) != 1 || ds[0].ID != id2 {
			t.Fatalf("claim after window %v, want the repeat", keys(ds))
		}
		if err := ob.MarkSent(ctx, id2, t0.Add(11*time.Minute)); err != nil {
			t.Fatal(err)
		}
		// After a send, a repeat waits throttle after DoneAt; with no
		// throttle it is due at once.
		enqueue(t, ob, del("ops", "k", t0.Add(12*time.Minute)), 10*time.Minute)
		if ds := claim(t, ob, t0.Add(20*time.Minute)); len(ds) != 0 {
			t.Fatal("repeat inside window claimed")
		}
		enqueue(t, ob, del("ops", "n", t0.Add(12*time.Minute)), 0)
		if ds := claim(t, ob, t0.Add(12*time.Minute)); len(ds) != 1 || ds[0].Key != "n" {
			t.Fatalf("unthrottled key not due at once: %v", keys(ds))
		}
	})

	t.Run("retry, merge into retry, dead", func(t *testing.T) {
		ob := newOutbox(t)
		id, _ := enqueue(t, ob, del("ops", "k", t0), time.Minute)
		claim(t, ob, t0)
		if err := ob.MarkRetry(ctx, id, 1, t0.Add(30*time.Second), "status 500"); err != nil {
			t.Fatal(err)
		}
		if _, merged := enqueue(t, ob, del("ops", "k", t0.Add(time.Second)), time.Minute); !merged {
			t.Fatal("repeat did not merge into the retrying delivery")
		}
		if ds := claim(t, ob, t0.Add(29*time.Second)); len(ds) != 0 {
			t.Fatal("claimed before next attempt")
		}
		ds := claim(t, ob, t0.Add(30*time.Second))
		if len(ds) != 1 || ds[0].Attempts != 1 || ds[0].LastError != "status 500" || ds[0].Count != 2 {
			t.Fatalf("retry claim %+v", ds)
		}
		if err := ob.MarkDead(ctx, id, 2, t0.Add(31*time.Second), "status 500 again"); err != nil {
			t.Fatal(err)
		}
		if ds := claim(t, ob, t0.Add(time.Hour*24)); len(ds) != 0 {
			t.Fatal("dead delivery claimed")
		}
		if _, merged := enqueue(t, ob, del("ops", "k", t0.Add(time.Minute)), time.Minute); merged {
			t.Fatal("repeat merged into a dead delivery")
		}
	})

	t.Run("unknown id", func(t *testing.T) {
		ob := newOutbox(t)
		for name, err := range map[string]error{
			"MarkSent":  ob.MarkSent(ctx, 999, t0),
			"MarkRetry": ob.MarkRetry(ctx, 999, 1, t0, "x"),
			"MarkDead":  ob.MarkDead(ctx, 999, 1, t0, "x"),
		} {
			if !errors.Is(err, notify.ErrUnknownDelivery) {
				t.Errorf("%s(999) = %v, want ErrUnknownDelivery", name, err)
			}
		}
	})

	t.Run("concurrent claims never share a delivery", func(t *testing.T) {
		ob := newOutbox(t)
		const n = 200
		for i := range n {
			enqueue(t, ob, del("ops", string(rune(0x4e00+i)), t0), 0)
		}
		var mu sync.Mutex
		seen := map[int64]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					ds, err := ob.Claim(ctx, t0, lease, 7)
					if err != nil {
						t.Error(err)
						return
					}
					if len(ds) == 0 {
						return
					}
					mu.Lock()
					for _, d := range ds {
						seen[d.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != n {
			t.Errorf("claimed %d distinct, want %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("delivery %d claimed %d times", id, c)
			}
		}
	})
}

func keys(ds []notify.Delivery) []string {
	var ks []string
	for _, d := range ds {
		ks = append(ks, d.Key)
	}
	return ks
}
