package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// State is where a delivery is in its life.
type State string

// Delivery states. pending → sending → sent | pending (retry) | dead.
const (
	// StatePending waits for NextAttempt (first try or a retry).
	StatePending State = "pending"
	// StateSending is claimed by a dispatcher until NextAttempt (its
	// lease); if that passes without a verdict the delivery is claimed
	// again, so a crash mid-send costs at most a duplicate.
	StateSending State = "sending"
	// StateSent was accepted by the provider.
	StateSent State = "sent"
	// StateDead failed MaxAttempts times or permanently. Kept, never
	// deleted silently, so it can be listed and replayed.
	StateDead State = "dead"
)

// Delivery is one alert for one channel in the outbox.
type Delivery struct {
	ID      int64
	Channel string
	// Key is the dedupe key (DedupeKey of the event); deliveries of one
	// channel with one key merge and are throttled together.
	Key     string
	Message Message
	// Count is how many events this delivery stands for (≥ 1).
	Count int
	State State
	// Attempts counts finished failed tries.
	Attempts int
	// NextAttempt is when a pending delivery is due, or when a sending
	// one's lease ends.
	NextAttempt time.Time
	// FirstSeen and LastSeen bound the events merged into it.
	FirstSeen time.Time
	LastSeen  time.Time
	// LastError is the last failure's text (never containing secrets).
	LastError string
	// DoneAt is when it was sent or declared dead.
	DoneAt time.Time
}

// ErrUnknownDelivery is returned by the Mark methods for an id the outbox
// does not hold.
var ErrUnknownDelivery = errors.New("notify: unknown delivery")

// Outbox is the delivery queue the Dispatcher consumes. The store
// implements it durably (one table; every method is one statement or a
// short transaction, see docs/alerts.md); MemoryOutbox is the in-process
// implementation. Implementations must be safe for concurrent use, also by
// several processes sharing one database.
type Outbox interface {
	// Enqueue adds d (Channel, Key, Message, Count ≥ 1, FirstSeen = now,
	// NextAttempt = earliest send time) with de-duplication:
	//   - if a pending delivery with the same Channel and Key exists, add
	//     d.Count to its Count, set its LastSeen to d.FirstSeen, and
	//     return its id with merged = true;
	//   - otherwise insert a new pending delivery, due no earlier than
	//     throttle after the latest delivery of that Channel and Key that
	//     was sent (DoneAt) or is being sent (treated as sent now), and
	//     return its id with merged = false.
	// A throttle ≤ 0 disables the second rule only.
	Enqueue(ctx context.Context, d Delivery, throttle time.Duration) (id int64, merged bool, err error)
	// Claim returns up to limit deliveries that are pending with
	// NextAttempt ≤ now, or sending with an expired lease (NextAttempt ≤
	// now), oldest NextAttempt first, and marks them sending with
	// NextAttempt = leaseUntil. Two concurrent Claims never return the
	// same delivery (SQL: FOR UPDATE SKIP LOCKED, or one UPDATE …
	// RETURNING). The returned copies carry the Count at claim time.
	Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Delivery, error)
	// MarkSent records success: state sent, DoneAt = at. (Events arriving
	// while a delivery is sending never merge into it — Enqueue merges only
	// into pending ones — so the Count it was sent with is final.)
	MarkSent(ctx context.Context, id int64, at time.Time) error
	// MarkRetry puts a delivery back to pending, due at next, with its
	// Attempts set to attempts and LastError to errText.
	MarkRetry(ctx context.Context, id int64, attempts int, next time.Time, errText string) error
	// MarkDead gives up: state dead, Attempts = attempts, DoneAt = at,
	// LastError = errText.
	MarkDead(ctx context.Context, id int64, attempts int, at time.Time, errText string) error
}

// MemoryOutbox is the in-process Outbox: for single-process use without a
// durable store, and for tests. Its contents are lost with the process, so
// it guarantees delivery only while the process lives. Safe for concurrent
// use. The zero value is ready.
type MemoryOutbox struct {
	mu     sync.Mutex
	nextID int64
	rows   []*Delivery // in id order
}

// Enqueue implements Outbox.
func (o *MemoryOutbox) Enqueue(ctx context.Context, d Delivery, throttle time.Duration) (int64, bool, error) {
	if d.Channel == "" || d.Key == "" {
		return 0, false, fmt.Errorf("notify: enqueue: channel %q and key %q must both be set", d.Channel, d.Key)
	}
	if d.Count < 1 {
		d.Count = 1
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var last time.Time
	for _, r := range o.rows {
		if r.Channel != d.Channel || r.Key != d.Key {
			continue
		}
		switch r.State {
		case StatePending:
			r.Count += d.Count
			if d.FirstSeen.After(r.LastSeen) {
				r.LastSeen = d.FirstSeen
			}
			return r.ID, true, nil
		case StateSent:
			if r.DoneAt.After(last) {
				last = r.DoneAt
			}
		case StateSending:
			if d.FirstSeen.After(last) {
				last = d.FirstSeen
			}
		}
	}
	if throttle > 0 && !last.IsZero() {
		if t := last.Add(throttle); t.After(d.NextAttempt) {
			d.NextAttempt = t
		}
	}
	return o.insert(d), false, nil
}

func (o *MemoryOutbox) insert(d Delivery) int64 {
	o.nextID++
	d.ID = o.nextID
	d.State = StatePending
	if d.LastSeen.IsZero() {
		d.LastSeen = d.FirstSeen
	}
	o.rows = append(o.rows, &d)
	return d.ID
}

// Claim implements Outbox.
func (o *MemoryOutbox) Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Delivery, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var due []*Delivery
	for _, r := range o.rows {
		if (r.State == StatePending || r.State == StateSending) && !r.NextAttempt.After(now) {
			due = append(due, r)
		}
	}
	slices.SortStableFunc(due, func(a, b *Delivery) int { return a.NextAttempt.Compare(b.NextAttempt) })
	if limit > 0 && len(due) > limit {
		due = due[:limit]
	}
	out := make([]Delivery, len(due))
	for i, r := range due {
		r.State = StateSending
		r.NextAttempt = leaseUntil
		out[i] = *r
	}
	return out, nil
}

func (o *MemoryOutbox) find(id int64) (*Delivery, error) {
	for _, r := range o.rows {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: id %d", ErrUnknownDelivery, id)
}

// MarkSent implements Outbox.
func (o *MemoryOutbox) MarkSent(ctx context.Context, id int64, at time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, err := o.find(id)
	if err != nil {
		return err
	}
	r.State, r.DoneAt, r.LastError = StateSent, at, ""
	return nil
}

// MarkRetry implements Outbox.
func (o *MemoryOutbox) MarkRetry(ctx context.Context, id int64, attempts int, next time.Time, errText string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, err := o.find(id)
	if err != nil {
		return err
	}
	r.State, r.Attempts, r.NextAttempt, r.LastError = StatePending, attempts, next, errText
	return nil
}

// MarkDead implements Outbox.
func (o *MemoryOutbox) MarkDead(ctx context.Context, id int64, attempts int, at time.Time, errText string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, err := o.find(id)
	if err != nil {
		return err
	}
	r.State, r.Attempts, r.DoneAt, r.LastError = StateDead, attempts, at, errText
	return nil
}

// List returns copies of the deliveries in the given states (all when none
// are given), in id order: how dead letters are shown.
func (o *MemoryOutbox) List(states ...State) []Delivery {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Delivery
	for _, r := range o.rows {
		if len(states) == 0 || slices.Contains(states, r.State) {
			out = append(out, *r)
		}
	}
	return out
}

// Prune forgets sent deliveries done before before and returns how many it
// removed; dead ones are kept until replayed or removed by an operator. The
// Dispatcher calls it (through the optional Pruner interface) so a
// long-running process does not grow without bound.
func (o *MemoryOutbox) Prune(ctx context.Context, before time.Time) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.rows)
	o.rows = slices.DeleteFunc(o.rows, func(r *Delivery) bool { return r.State == StateSent && r.DoneAt.Before(before) })
	return n - len(o.rows), nil
}
