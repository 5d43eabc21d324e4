package notify

import (
	"sync"
	"time"
)

// bucket is a token bucket: up to burst tokens, refilled at perMinute. It
// also holds a channel-wide pause set when the provider answered 429, so
// no delivery on that channel goes out before the provider allows it.
// Safe for concurrent use. Time comes from the caller (the Dispatcher's
// clock), so tests drive it without sleeping.
type bucket struct {
	mu          sync.Mutex
	perMinute   float64
	burst       float64
	tokens      float64
	last        time.Time
	pausedUntil time.Time
}

func newBucket(perMinute float64, burst int) *bucket {
	if burst < 1 {
		burst = 1
	}
	return &bucket{perMinute: perMinute, burst: float64(burst), tokens: float64(burst)}
}

func (b *bucket) refill(now time.Time) {
	if !b.last.IsZero() && now.After(b.last) && b.perMinute > 0 {
		b.tokens += now.Sub(b.last).Minutes() * b.perMinute
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
}

// take spends one token and returns 0, or returns how long to wait before
// one is available (or the pause ends), spending nothing. perMinute ≤ 0
// means unlimited.
func (b *bucket) take(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Before(b.pausedUntil) {
		return b.pausedUntil.Sub(now)
	}
	if b.perMinute <= 0 {
		return 0
	}
	b.refill(now)
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	need := (1 - b.tokens) / b.perMinute
	return time.Duration(need * float64(time.Minute))
}

// pause stops the channel until t.
func (b *bucket) pause(t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.After(b.pausedUntil) {
		b.pausedUntil = t
	}
}
