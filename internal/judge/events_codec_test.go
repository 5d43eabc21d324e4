package judge

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// A replica's journal, shipped through the codec into the leader's tracker,
// counts each user once however many replicas saw their events.
func TestJournalShippedToLeaderCountsUsersOnce(t *testing.T) {
	leader, replica := NewTracker(1), NewTracker(1)
	replica.Journal()
	leader.Journal()
	// User 1 fails on both replicas, user 2 on the replica only, user 3 on
	// the leader only; user 4 is slow on the replica's canary.
	replica.SetThresholds([3]time.Duration{time.Second, 2 * time.Second, 3 * time.Second})
	replica.Observe(1, Canary, true, 0)
	replica.Observe(1, Canary, true, 0) // not new: not journaled again
	replica.Observe(2, Stable, true, 0)
	replica.Observe(4, Canary, false, 5*time.Second)
	leader.Observe(1, Canary, true, 0)
	leader.Observe(3, Canary, true, 0)

	evs, lost := replica.TakeJournal()
	if lost != 0 || len(evs) != 3 {
		t.Fatalf("replica journal = %+v (lost %d), want 3 events", evs, lost)
	}
	got, err := DecodeEvents(EncodeEvents(evs))
	if err != nil || !reflect.DeepEqual(got, evs) {
		t.Fatalf("codec round trip = %+v, %v; want %+v", got, err, evs)
	}
	var b Bin
	leader.Drain(&b) // the leader's own: users 1 and 3 on the canary
	if b.Canary.FirstErrors != 2 {
		t.Fatalf("leader's own first canary errors = %d, want 2", b.Canary.FirstErrors)
	}
	for _, e := range got {
		leader.Add(e.User, e.Build, e.Events)
	}
	b = Bin{}
	leader.Drain(&b)
	if b.Canary.FirstErrors != 0 || b.Stable.FirstErrors != 1 || b.Canary.FirstExceed != [3]uint64{1, 1, 1} {
		t.Errorf("after the replica's events: canary first errors %d (want 0: user 1 was counted), stable %d (want 1), canary exceedances %v (want [1 1 1])",
			b.Canary.FirstErrors, b.Stable.FirstErrors, b.Canary.FirstExceed)
	}
	// Events fed through Add are not journaled again by the leader.
	if evs, _ := leader.TakeJournal(); len(evs) != 2 {
		t.Errorf("leader journal = %+v, want only its own two users", evs)
	}
}

func TestDecodeEventsRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{{2}, {1, 1, 2, 3}, append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, 0x21)} {
		if _, err := DecodeEvents(b); !errors.Is(err, ErrEventsEncoding) {
			t.Errorf("DecodeEvents(%v) = %v, want ErrEventsEncoding", b, err)
		}
	}
}
