package judge

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Build says which side of the comparison a request was served by.
type Build uint8

const (
	// Stable is the build being replaced.
	Stable Build = 0
	// Canary is the build under test.
	Canary Build = 1
)

// Event bits: what a user did for the first time in the release.
const (
	EventFailed  uint8 = 1 << 0 // first failed request
	EventExceed0 uint8 = 1 << 1 // first request slower than Thresholds()[0] (p75)
	EventExceed1 uint8 = 1 << 2 // … [1] (p90)
	EventExceed2 uint8 = 1 << 3 // … [2] (p99)
	eventMask    uint8 = 0x0f
)

const trackerShards = 64

// Tracker records, for one release, which users already had each first
// event, so the judge can count every user once (Sticky mode) and count
// distinct harmed users (both modes). Users are 64-bit hashes of the user
// key; the set stores 60 bits of the hash and the 4 event bits in one
// uint64, so a user costs one 8-byte slot in an open-addressing table kept
// between 3/8 and 3/4 full (it doubles when 3/4 full): 11–21 bytes a user.
// Only users who had an event are stored.
//
// Cost on the request path: a request that neither failed nor exceeded the
// lowest threshold costs one atomic load and a compare; otherwise one
// uncontended mutex of 64 shards and a probe (see BenchmarkTrackerObserve).
//
// With Sample < 1 only users whose (remixed) hash falls in that fraction
// are tracked: a hash-based subsample is a random subset of users
// independent of their routing, so the tests stay exact and memory stays
// bounded. The remix keeps the sample independent of the cohort bucket as
// long as the cohort bucket is not computed by the same remix.
//
// All methods are safe for concurrent use. The zero value is not usable;
// call NewTracker.
type Tracker struct {
	shards [trackerShards]trackerShard
	thr    [3]atomic.Int64 // nanoseconds; 0 = latency events off
	keep   uint64          // keep users with remix(h) ≤ keep
	counts [2][4]atomic.Uint64

	// journal holds the first events Observe found since the last
	// TakeJournal, when journaling is on (a replica ships them to the
	// leader, see Add).
	jmu     sync.Mutex
	journal []FirstEvent
	jlost   uint64
	jon     atomic.Bool
}

// FirstEvent is a user's events that were new on one replica: what a
// replica ships to the leader's tracker.
type FirstEvent struct {
	User   uint64
	Build  Build
	Events uint8
}

// journalCap bounds the journal when nobody takes it (the store is down):
// beyond it events are counted as lost, not kept. 1 M events is 24 MiB.
const journalCap = 1 << 20

type trackerShard struct {
	mu    sync.Mutex
	slots []uint64 // (hash<<4 | events); 0 = empty
	n     int
	_     [24]byte // keep shards on separate cache lines
}

// NewTracker returns an empty tracker keeping the fraction sample of users
// (clamped to (0, 1]; 0 means 1).
func NewTracker(sample float64) *Tracker {
	t := &Tracker{keep: math.MaxUint64}
	if sample > 0 && sample < 1 {
		t.keep = uint64(sample * float64(math.MaxUint64))
	}
	return t
}

// SetThresholds sets the latency thresholds first exceedances are counted
// against (Judge.Thresholds after each Observe). Zeros switch latency
// events off.
func (t *Tracker) SetThresholds(th [3]time.Duration) {
	for k, d := range th {
		t.thr[k].Store(int64(d))
	}
}

func remix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// Observe records one randomised request of user (a 64-bit hash of the
// user key) served by build b, failed or not, that took d. It returns the
// event bits that were new for this user in the release (0 almost always),
// which a replica ships to the leader's tracker (see Add).
func (t *Tracker) Observe(user uint64, b Build, failed bool, d time.Duration) uint8 {
	var ev uint8
	if failed {
		ev = EventFailed
	}
	if t0 := t.thr[0].Load(); t0 > 0 && int64(d) > t0 {
		ev |= EventExceed0
		if int64(d) > t.thr[1].Load() {
			ev |= EventExceed1
			if int64(d) > t.thr[2].Load() {
				ev |= EventExceed2
			}
		}
	}
	if ev == 0 {
		return 0
	}
	fresh := t.Add(user, b, ev)
	if fresh != 0 && t.jon.Load() {
		t.jmu.Lock()
		if len(t.journal) < journalCap {
			t.journal = append(t.journal, FirstEvent{User: user, Build: b, Events: fresh})
		} else {
			t.jlost++
		}
		t.jmu.Unlock()
	}
	return fresh
}

// Journal switches on the journal of first events that Observe finds (not
// those fed through Add: they came from another replica).
func (t *Tracker) Journal() { t.jon.Store(true) }

// TakeJournal returns the journaled first events since the last call and
// how many were lost because the journal was full, and empties it.
func (t *Tracker) TakeJournal() (events []FirstEvent, lost uint64) {
	t.jmu.Lock()
	defer t.jmu.Unlock()
	events, lost = t.journal, t.jlost
	t.journal, t.jlost = nil, 0
	return events, lost
}

// Add records that user had the events ev on build b and returns those that
// were new. The leader feeds the triples shipped by every replica through
// Add, which de-duplicates them across replicas.
func (t *Tracker) Add(user uint64, b Build, ev uint8) uint8 {
	ev &= eventMask
	if ev == 0 || b > Canary {
		return 0
	}
	m := remix(user)
	if m > t.keep {
		return 0
	}
	key := m << 4 // the remix is a bijection: 60 of its bits identify the user
	if key == 0 {
		key = 1 << 4
	}
	sh := &t.shards[m>>58]
	sh.mu.Lock()
	fresh := sh.set(key, ev)
	sh.mu.Unlock()
	for k := 0; k < 4; k++ {
		if fresh&(1<<k) != 0 {
			t.counts[b][k].Add(1)
		}
	}
	return fresh
}

// set ORs ev into key's slot and returns the bits that were not set.
func (s *trackerShard) set(key uint64, ev uint8) uint8 {
	if len(s.slots) == 0 {
		s.slots = make([]uint64, 64)
	}
	mask := uint64(len(s.slots) - 1)
	for i := (key >> 4) & mask; ; i = (i + 1) & mask {
		v := s.slots[i]
		if v == 0 {
			s.slots[i] = key | uint64(ev)
			s.n++
			if s.n*4 > len(s.slots)*3 {
				s.grow()
			}
			return ev
		}
		if v&^0xf == key {
			fresh := ev &^ uint8(v&0xf)
			s.slots[i] = v | uint64(ev)
			return fresh
		}
	}
}

func (s *trackerShard) grow() {
	old := s.slots
	s.slots = make([]uint64, 2*len(old))
	mask := uint64(len(s.slots) - 1)
	for _, v := range old {
		if v == 0 {
			continue
		}
		i := (v >> 4) & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = v
	}
}

// Drain moves the first-event counts accumulated since the last Drain into
// the bin's samples (FirstErrors, FirstExceed), resetting them. Call it
// once per bin, just before Judge.Observe.
func (t *Tracker) Drain(bin *Bin) {
	for b, s := range []*Sample{&bin.Stable, &bin.Canary} {
		s.FirstErrors += t.counts[b][0].Swap(0)
		for k := range s.FirstExceed {
			s.FirstExceed[k] += t.counts[b][k+1].Swap(0)
		}
	}
}

// Users returns the number of users with at least one event, and the bytes
// their table holds.
func (t *Tracker) Users() (users int, bytes int) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		users += s.n
		bytes += 8 * len(s.slots)
		s.mu.Unlock()
	}
	return users, bytes
}
