package sqlstore

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/canaryd/canaryd/internal/store"
)

func recv(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered within 5s")
	}
	return store.Change{}
}

func TestFeedDeliversInOrder(t *testing.T) {
	f := NewFeed()
	defer f.Close()
	ch := f.Subscribe(t.Context())
	for i := range 10 {
		f.Publish(store.Change{Kind: store.ChangeEvent, EventID: int64(i)})
	}
	for i := range 10 {
		if c := recv(t, ch); c.EventID != int64(i) {
			t.Fatalf("change %d = %+v", i, c)
		}
	}
}

// TestFeedSlowSubscriber: a subscriber that reads nothing while more than
// maxQueue changes are published gets a resync, and the publisher never
// blocks.
func TestFeedSlowSubscriber(t *testing.T) {
	f := NewFeed()
	defer f.Close()
	slow := f.Subscribe(t.Context())
	// Nobody reads while we publish: Publish must return every time.
	for range 3 * maxQueue {
		f.Publish(store.Change{Kind: store.ChangeService, Service: "api"})
	}
	f.Publish(store.Change{Kind: store.ChangeService, Service: "last"})
	n, sawResync := 0, false
	for {
		c := recv(t, slow)
		n++
		if c.Kind == store.ChangeResync {
			sawResync = true
		}
		if c.Service == "last" {
			break
		}
	}
	if !sawResync || n > 2*maxQueue {
		t.Fatalf("slow subscriber got %d changes, resync %v: want a resync instead of the backlog", n, sawResync)
	}
}

func TestFeedClose(t *testing.T) {
	f := NewFeed()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a := f.Subscribe(ctx)
	f.Close()
	f.Close() // idempotent
	for range a {
	}
	if _, ok := <-f.Subscribe(ctx); ok {
		t.Fatal("Subscribe after Close returned an open channel")
	}
	f.Publish(store.Change{Kind: store.ChangeService}) // must not panic or block
}

func TestLoadMigrations(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  int
		bad   bool
	}{
		{"ordered", map[string]string{"m/0002_b.sql": "B", "m/0001_a.sql": "A"}, 2, false},
		{"gap", map[string]string{"m/0001_a.sql": "A", "m/0003_c.sql": "C"}, 0, true},
		{"bad name", map[string]string{"m/first.sql": "A"}, 0, true},
		{"zero", map[string]string{"m/0000_a.sql": "A"}, 0, true},
		{"empty", map[string]string{}, 0, false},
	}
	for _, tt := range tests {
		fsys := fstest.MapFS{}
		for name, body := range tt.files {
			fsys[name] = &fstest.MapFile{Data: []byte(body)}
		}
		ms, err := LoadMigrations(fsys, "m")
		if (err != nil) != tt.bad || len(ms) != tt.want {
			t.Errorf("%s: %d migrations, err %v", tt.name, len(ms), err)
			continue
		}
		for i, m := range ms {
			if m.Version != i+1 {
				t.Errorf("%s: migration %d has version %d", tt.name, i, m.Version)
			}
		}
	}
}

func TestStamp(t *testing.T) {
	loc := time.FixedZone("x", 3600)
	in := time.Date(2026, 1, 1, 12, 0, 0, 123_456_789, loc)
	got := Stamp(in)
	if got.Location() != time.UTC || got.Nanosecond() != 123_456_000 || !got.Equal(in.Truncate(time.Microsecond)) {
		t.Fatalf("Stamp(%v) = %v", in, got)
	}
	if !Stamp(time.Time{}).IsZero() {
		t.Fatal("Stamp(zero) is not zero")
	}
}
