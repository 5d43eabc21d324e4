package metrics

import (
	"sync/atomic"
	"time"

	"github.com/canaryd/canaryd/internal/latency"
	"github.com/canaryd/canaryd/internal/metrics/hll"
)

// Class is the outcome class of one request: its HTTP status class, or a
// connection error when the upstream never answered.
type Class uint8

// The classes, in the order of Totals.Classes and Bin.Classes.
const (
	Class1xx       Class = iota
	Class2xx             // success
	Class3xx             // redirect
	Class4xx             // client error: not the build's fault, not an error here
	Class5xx             // server error: counts as an error
	ClassConnError       // dial failure, reset, timeout before a response: counts as an error
	ClassOther           // a status outside 100–599
	NumClasses     = 7
)

var classNames = [NumClasses]string{"1xx", "2xx", "3xx", "4xx", "5xx", "conn_error", "other"}

// String returns the class as exposed in the Prometheus label `class`:
// "1xx" … "5xx", "conn_error" or "other".
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "invalid"
}

// IsError reports whether the class counts as an error of the build: a 5xx
// or a connection error. 4xx are the client's doing and are not errors.
func (c Class) IsError() bool { return c == Class5xx || c == ClassConnError }

// ClassOf classifies a request. A connection error wins over any status:
// the status the gateway sent the client (502, 504) is its own, not the
// build's, and counting it as 5xx too would count the failure twice.
func ClassOf(status int, connErr bool) Class {
	switch {
	case connErr:
		return ClassConnError
	case status >= 100 && status < 600:
		return Class(status/100 - 1)
	default:
		return ClassOther
	}
}

// Outcome is what the proxy knows when a request to one build ends. Passed
// by value: building and passing it does not allocate.
type Outcome struct {
	// Status is the upstream's response status. Ignored when ConnErr is set.
	Status int
	// ConnErr reports that the upstream never produced a response: dial
	// failure, connection reset, timeout before the response header.
	ConnErr bool
	// Duration is from the start of the attempt to the end of the response
	// body (or to the failure). It is recorded for every outcome, errors
	// included, so a build that fails slowly also looks slow. For an
	// upgraded connection (WebSocket) pass the time to the 101 response,
	// not the connection's lifetime, or hours-long sockets would swamp the
	// latency of the build.
	Duration time.Duration
	// BytesIn is the request body bytes read from the client; BytesOut the
	// response body bytes written to the client. Negative counts as zero.
	BytesIn, BytesOut int64
	// User is the hash of the user key (as routing computed it); 0 means no
	// known user, and the request then counts in no distinct-user sketch.
	// Any 64-bit hash will do: the sketches mix it again.
	User uint64
}

// BuildMetrics holds the counters of one build of one service. The proxy
// gets it once from Registry.Build (when it builds its routing snapshot) and
// keeps the pointer beside the build, so the request path touches only
// BuildMetrics' atomics: Begin and End never lock, never look anything up and
// never allocate. Safe for concurrent use.
type BuildMetrics struct {
	service, build string
	state          atomic.Pointer[string]

	inFlight atomic.Int64
	classes  [NumClasses]atomic.Uint64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	latSum   atomic.Uint64 // nanoseconds, for the Prometheus histogram's _sum
	latency  latency.Atomic
	users    hll.Sketch
	harmed   hll.Sketch

	win window // touched only by Registry.Tick and readers, never by Begin/End
}

func newBuildMetrics(service, build string, window int, now time.Time) *BuildMetrics {
	bm := &BuildMetrics{service: service, build: build}
	empty := ""
	bm.state.Store(&empty)
	bm.win.init(window, now)
	return bm
}

// Service returns the service name the handle was created for.
func (bm *BuildMetrics) Service() string { return bm.service }

// Build returns the build id the handle was created for.
func (bm *BuildMetrics) Build() string { return bm.build }

// State returns the state last set with SetState ("" until then).
func (bm *BuildMetrics) State() string { return *bm.state.Load() }

// SetState records the build's routing state ("stable", "canary", …) for
// the `state` label of its Prometheus series. The control plane's snapshot
// builder calls it whenever it builds a snapshot; it costs one allocation
// only when the state changes. A change starts new series under the new
// label value, as Prometheus expects of a changed label.
func (bm *BuildMetrics) SetState(state string) {
	if *bm.state.Load() != state {
		bm.state.Store(&state)
	}
}

// Begin counts a request to this build as in flight. Every Begin must be
// followed by exactly one End.
func (bm *BuildMetrics) Begin() { bm.inFlight.Add(1) }

// End records the outcome of a request started with Begin. Lock-free and
// allocation-free.
func (bm *BuildMetrics) End(o Outcome) {
	bm.inFlight.Add(-1)
	c := ClassOf(o.Status, o.ConnErr)
	bm.classes[c].Add(1)
	bm.latency.Record(o.Duration)
	if o.Duration > 0 {
		bm.latSum.Add(uint64(o.Duration))
	}
	if o.BytesIn > 0 {
		bm.bytesIn.Add(uint64(o.BytesIn))
	}
	if o.BytesOut > 0 {
		bm.bytesOut.Add(uint64(o.BytesOut))
	}
	if o.User != 0 {
		bm.users.Add(o.User)
		if c.IsError() {
			bm.harmed.Add(o.User)
		}
	}
}

// Totals are a build's counts since its handle was created.
type Totals struct {
	// Classes counts requests by Class.
	Classes [NumClasses]uint64
	// BytesIn and BytesOut are body bytes from and to clients.
	BytesIn, BytesOut uint64
	// InFlight is the number of requests begun and not yet ended.
	InFlight int64
	// Latency holds every recorded duration; LatencySum is their exact sum.
	Latency    latency.Histogram
	LatencySum time.Duration
	// Users estimates the distinct users served; Harmed those of them who
	// got at least one 5xx or connection error (HyperLogLog, ≈ 0.8 % error).
	Users, Harmed float64
}

// Requests returns the number of requests of every class.
func (t *Totals) Requests() uint64 { return sumClasses(&t.Classes) }

// Errors returns the number of 5xx and connection errors.
func (t *Totals) Errors() uint64 { return t.Classes[Class5xx] + t.Classes[ClassConnError] }

func sumClasses(c *[NumClasses]uint64) uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// Totals returns the build's counts since creation. Requests that end while
// Totals runs may be included in some fields and not yet in others; every
// field is exact once they have ended.
func (bm *BuildMetrics) Totals() Totals {
	var t Totals
	bm.counters(&t)
	t.Users = bm.users.Estimate()
	t.Harmed = bm.harmed.Estimate()
	return t
}

// counters fills every field of t except the distinct-user estimates.
func (bm *BuildMetrics) counters(t *Totals) {
	for i := range bm.classes {
		t.Classes[i] = bm.classes[i].Load()
	}
	t.BytesIn = bm.bytesIn.Load()
	t.BytesOut = bm.bytesOut.Load()
	t.InFlight = bm.inFlight.Load()
	t.LatencySum = time.Duration(bm.latSum.Load())
	bm.latency.SnapshotInto(&t.Latency)
}

// DistinctUsers returns a copy of the sketch of distinct users and of those
// harmed, for a replica to publish and a leader to merge across replicas.
func (bm *BuildMetrics) DistinctUsers() (users, harmed *hll.Sketch) {
	return bm.users.Clone(), bm.harmed.Clone()
}
