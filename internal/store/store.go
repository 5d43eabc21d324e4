// Package store defines where canaryd keeps its runtime state: services and
// their release state, builds and endpoints, the append-only event log,
// release records, policy overrides, alert channels with their outbox,
// idempotency keys and the controller lease.
//
// Two implementations exist, internal/store/sqlite (embedded, the default)
// and internal/store/postgres (shared by many gateway replicas). Both pass
// the one suite in internal/store/storetest, so callers can rely on the
// contracts written here and nothing else.
//
// Every write happens inside Store.Update: the control plane changes state
// and appends the event that explains it in one transaction, so either both
// are stored or neither is. Writes are guarded by optimistic revisions; a
// caller that read revision N may only write over revision N.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/canaryd/canaryd/internal/event"
)

// ErrNotFound reports that the record asked for does not exist (or, for
// idempotency keys, has expired). Callers branch on it with errors.Is.
var ErrNotFound = errors.New("not found")

// ErrConflict reports a write that contradicts what is stored: a revision
// that is no longer current, a record that already exists, a second stable
// or canary build, a lease held by someone else, or (from Update) a
// transaction that kept losing races with concurrent writers. The stores
// check before they write, so the transaction stays usable after a Tx method
// returns ErrConflict and fn may try something else; only a race the check
// could not see surfaces as a constraint error, also wrapped as ErrConflict,
// after which PostgreSQL refuses further statements in that transaction.
var ErrConflict = errors.New("conflict")

// ErrInvalid reports a record that cannot be stored as given (an empty key,
// an unknown state, malformed JSON). The wrapping error names the field.
var ErrInvalid = errors.New("invalid")

// Store is a transactional state store. Implementations are safe for
// concurrent use by many goroutines; Close must be called once, after every
// other call has returned.
type Store interface {
	// Update runs fn in one read-write transaction and commits it if fn
	// returns nil. If fn returns an error, nothing fn wrote is kept (no state
	// change, no event, no change notification) and Update returns fn's
	// error unchanged, so errors.Is works on it. (PostgreSQL only: a
	// transaction that still loses serialization races after many retries
	// fails with an error wrapping ErrConflict.)
	//
	// fn may be called more than once when the implementation retries a
	// transaction that lost a race with a concurrent writer (PostgreSQL
	// serialization failures), so it must not have side effects outside tx
	// and must compute everything it writes from what it reads through tx.
	// tx must not be used after fn returns, and fn must not call the Store
	// itself (SQLite's single writer connection would deadlock).
	Update(ctx context.Context, fn func(tx Tx) error) error

	// View runs fn in a read-only transaction that sees one consistent
	// snapshot of the store. r must not be used after fn returns.
	View(ctx context.Context, fn func(r Reader) error) error

	// Subscribe returns a channel that receives a Change after each
	// committed transaction that wrote something, on this process and (for
	// PostgreSQL) on every other process sharing the database. The channel
	// is closed when ctx ends or the store is closed.
	//
	// Delivery never blocks writers: a subscriber that falls too far behind
	// gets one ChangeResync instead of the changes it missed, after which it
	// must reload what it cares about; the same happens when a PostgreSQL
	// listening connection had to reconnect. Every change committed after
	// Subscribe returns is delivered (or covered by a ChangeResync); one
	// committed just before may be too, since PostgreSQL delivers
	// asynchronously. So subscribe first, then load.
	Subscribe(ctx context.Context) <-chan Change

	// Close releases the store's connections and stops its background work.
	Close() error
}

// Reader is the read half of a transaction.
type Reader interface {
	// GetService returns the named service or ErrNotFound.
	GetService(ctx context.Context, name string) (Service, error)
	// ListServices returns every service, ordered by name.
	ListServices(ctx context.Context) ([]Service, error)

	// GetBuild returns one build with its endpoints, or ErrNotFound.
	GetBuild(ctx context.Context, service, id string) (Build, error)
	// ListBuilds returns the builds matching f with their endpoints,
	// ordered by service, then registration time, then id.
	ListBuilds(ctx context.Context, f BuildFilter) ([]Build, error)

	// ListEvents returns one page of events matching q, ordered by ID
	// (ascending, or descending when q.Desc). Event IDs grow in commit
	// order, so paging with AfterID never skips an event committed later.
	ListEvents(ctx context.Context, q EventQuery) ([]event.Event, error)

	// GetRelease returns one release record or ErrNotFound.
	GetRelease(ctx context.Context, id string) (Release, error)
	// ListReleases returns release records matching f, newest first.
	ListReleases(ctx context.Context, f ReleaseFilter) ([]Release, error)

	// GetPolicy returns the policy override of a service or ErrNotFound.
	GetPolicy(ctx context.Context, service string) (Policy, error)
	// ListPolicies returns every policy override, ordered by service.
	ListPolicies(ctx context.Context) ([]Policy, error)

	// GetAlertChannel returns one alert channel or ErrNotFound.
	GetAlertChannel(ctx context.Context, id string) (AlertChannel, error)
	// ListAlertChannels returns every alert channel, ordered by ID.
	ListAlertChannels(ctx context.Context) ([]AlertChannel, error)

	// GetAlert returns one alert delivery or ErrNotFound.
	GetAlert(ctx context.Context, id int64) (AlertDelivery, error)
	// ListAlerts returns alert deliveries matching q, newest first: how dead
	// alerts are shown.
	ListAlerts(ctx context.Context, q AlertQuery) ([]AlertDelivery, error)
	// GetCursor returns the position stored under name (see PutCursor), or
	// ErrNotFound if none was ever stored.
	GetCursor(ctx context.Context, name string) (int64, error)

	// GetIdempotency returns the response stored under key, or ErrNotFound
	// when there is none or it expired at or before now.
	GetIdempotency(ctx context.Context, key string, now time.Time) (Idempotency, error)

	// GetLease returns the named lease or ErrNotFound if it was never taken.
	// A lease whose ExpiresAt is not after now is free whatever its Holder.
	GetLease(ctx context.Context, name string) (Lease, error)
	// ListAnalysisBins returns the published bins of a service that end in
	// (after, through], ordered by End, then replica, then build.
	ListAnalysisBins(ctx context.Context, service string, after, through int64) ([]AnalysisBin, error)
	// ListAnalysisMarks returns every replica's mark for a service, ordered
	// by replica.
	ListAnalysisMarks(ctx context.Context, service string) ([]AnalysisMark, error)
	// ListAnalysisEvents returns up to limit batches of first events of a
	// release with an ID above afterID, in ID order.
	ListAnalysisEvents(ctx context.Context, release string, afterID int64, limit int) ([]AnalysisEvents, error)
}

// Tx is a read-write transaction handed to Store.Update. Methods that
// return a record return it as stored, with its new Revision and the
// timestamps the store set.
//
// The records with a Revision (Service, Build, Release, Policy,
// AlertChannel) share one write rule: Put with Revision 0 creates the record
// and fails with ErrConflict if it exists; Put with Revision N updates it only
// if the stored revision is N (ErrConflict otherwise, ErrNotFound if it does
// not exist). A successful Put stores Revision N+1 (1 for a new record).
type Tx interface {
	Reader

	// PutService creates or updates a service's release state.
	PutService(ctx context.Context, s Service) (Service, error)
	// DeleteService removes a service with its builds, their endpoints and
	// its policy override, if revision matches (0: any revision). Events and
	// release records stay: they are history.
	DeleteService(ctx context.Context, name string, revision int64) error

	// PutBuild creates or updates a build. The service must exist
	// (ErrNotFound otherwise). At most one build per service may be
	// StateStable and at most one StateCanary: a Put that would make a second
	// one fails with ErrConflict, so a promotion first demotes the old stable.
	// On create, b.Endpoints are stored too; on update b.Endpoints is ignored
	// (use PutEndpoint and DeleteEndpoint) so that heartbeats never move a
	// build's revision.
	PutBuild(ctx context.Context, b Build) (Build, error)
	// PutEndpoint adds an endpoint to a build or replaces the one with the
	// same Addr. ErrNotFound if the build does not exist.
	PutEndpoint(ctx context.Context, service, build string, e Endpoint) error
	// TouchEndpoint records a heartbeat at time at. It returns ErrNotFound
	// if the endpoint is not registered (the build should register again).
	// revived reports that the endpoint had expired before this heartbeat;
	// only then is a Change published, so steady heartbeats stay quiet.
	TouchEndpoint(ctx context.Context, service, build, addr string, at time.Time) (revived bool, err error)
	// DeleteEndpoint removes one endpoint, or returns ErrNotFound.
	DeleteEndpoint(ctx context.Context, service, build, addr string) error

	// AppendEvent stores ev, setting its ID and Time (from the store's
	// clock), and returns it. Events are never changed or deleted.
	AppendEvent(ctx context.Context, ev event.Event) (event.Event, error)

	// PutRelease creates or updates a release record.
	PutRelease(ctx context.Context, r Release) (Release, error)

	// PutPolicy creates or updates a service's policy override.
	PutPolicy(ctx context.Context, p Policy) (Policy, error)
	// DeletePolicy removes a policy override if revision matches (0: any).
	DeletePolicy(ctx context.Context, service string, revision int64) error

	// PutAlertChannel creates or updates an alert channel.
	PutAlertChannel(ctx context.Context, c AlertChannel) (AlertChannel, error)
	// DeleteAlertChannel removes a channel if revision
	// matches (0: any).
	DeleteAlertChannel(ctx context.Context, id string, revision int64) error

	// EnqueueAlert adds d to the alert outbox with the de-duplication of
	// notify.Outbox.Enqueue: if a pending delivery of d.Channel and d.Key
	// exists (the oldest, if several), its Count grows by d.Count and its
	// LastSeen moves forward to d.FirstSeen, and its id is returned with merged ==
	// true. Otherwise a pending delivery is inserted, due at d.NextAttempt
	// or, when throttle > 0, no earlier than throttle after the latest
	// delivery of that channel and key that was sent (its DoneAt) or is
	// being sent (counted as sent at d.FirstSeen). A Count below 1 counts
	// as 1. Nothing is published on the change feed.
	EnqueueAlert(ctx context.Context, d AlertDelivery, throttle time.Duration) (id int64, merged bool, err error)

	// PublishAnalysis stores one replica's newest bins (replacing any with
	// the same replica, service, build and End), its marks, and its batches
	// of first events (their ID and CreatedAt are set by the store). It
	// publishes nothing on the change feed: replicas publish every second.
	PublishAnalysis(ctx context.Context, bins []AnalysisBin, marks []AnalysisMark, events []AnalysisEvents) error
	// PruneAnalysis deletes bins that end before before, marks written
	// before it, and batches of first events written before it whose
	// release is no longer active. It returns how many rows it deleted.
	PruneAnalysis(ctx context.Context, before time.Time) (int64, error)
	// ClaimAlerts returns up to limit deliveries that are pending or
	// sending with NextAttempt at or before now, earliest first, after
	// marking them sending with NextAttempt = leaseUntil. Concurrent claims
	// in separate transactions never both return one delivery (SQLite has
	// one writer; PostgreSQL's SERIALIZABLE makes one of them retry).
	ClaimAlerts(ctx context.Context, now, leaseUntil time.Time, limit int) ([]AlertDelivery, error)
	// MarkAlertSent records a successful delivery at time at.
	// ErrNotFound if no delivery has that id.
	MarkAlertSent(ctx context.Context, id int64, at time.Time) error
	// MarkAlertRetry makes a delivery pending again, due at next, with
	// Attempts = attempts and LastError = errText. ErrNotFound as above.
	MarkAlertRetry(ctx context.Context, id int64, attempts int, next time.Time, errText string) error
	// MarkAlertDead gives a delivery up at time at. ErrNotFound as above.
	MarkAlertDead(ctx context.Context, id int64, attempts int, at time.Time, errText string) error
	// PruneAlerts deletes sent deliveries done before before and returns
	// how many; dead ones are kept.
	PruneAlerts(ctx context.Context, before time.Time) (int64, error)
	// PutCursor stores position under name: how far a follower of the
	// event log has got. Writing it in the transaction that acts on the
	// events makes following exactly-once across restarts and replicas.
	PutCursor(ctx context.Context, name string, position int64) error

	// PutIdempotency stores a response under rec.Key until rec.ExpiresAt.
	// ErrConflict if an unexpired record with that key exists at now; an
	// expired one is replaced.
	PutIdempotency(ctx context.Context, rec Idempotency, now time.Time) error
	// PurgeIdempotency deletes records expired at now and returns how many.
	PurgeIdempotency(ctx context.Context, now time.Time) (int64, error)

	// AcquireLease gives the named lease to holder until now+ttl if it is
	// free (never taken, released, or expired at now) or already held by
	// holder (then it is a renewal). Otherwise it returns the current lease
	// and ErrConflict. Epoch grows each time the holder changes, so it works
	// as a fencing token. Clocks of replicas must agree to well within ttl.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (Lease, error)
	// RenewLease extends holder's lease to now+ttl. Unlike AcquireLease it
	// never takes a lease: ErrConflict if someone else holds it or it was
	// released, ErrNotFound if it was never taken. A holder whose lease
	// expired may still renew it as long as nobody else acquired it
	// meanwhile (its Epoch is unchanged, so nobody acted in between).
	RenewLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (Lease, error)
	// ReleaseLease frees holder's lease at once, so another replica can
	// take over without waiting for it to expire. ErrConflict if the lease
	// names another holder (even an expired one), ErrNotFound if it was never
	// taken; releasing a lease that was already released is not an error.
	ReleaseLease(ctx context.Context, name, holder string) error
}
