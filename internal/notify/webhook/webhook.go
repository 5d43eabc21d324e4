// Package webhook delivers alerts as a signed JSON POST to any URL.
//
// Every request carries
//
//	X-Canaryd-Timestamp: <unix seconds when the request was signed>
//	X-Canaryd-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//	X-Canaryd-Delivery:  <alert id, the same on every retry>
//
// A receiver recomputes the HMAC over the exact bytes it received, compares
// in constant time, and rejects a timestamp too far from its own clock
// (replay protection); Verify does exactly that and documents the recipe.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/notify/alert"
)

// Header names set on every request.
const (
	HeaderTimestamp = "X-Canaryd-Timestamp"
	HeaderSignature = "X-Canaryd-Signature"
	HeaderDelivery  = "X-Canaryd-Delivery"
)

// DefaultTolerance is how far a timestamp may be from the receiver's clock
// before Verify rejects the request as a replay.
const DefaultTolerance = 5 * time.Minute

// Config configures one webhook.
type Config struct {
	// URL receives the POST. It may carry credentials and is treated as a
	// secret in errors.
	URL string
	// Secret keys the HMAC. Empty means unsigned requests, which New
	// refuses: a receiver could not tell our alerts from anybody's.
	Secret string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// Now stamps requests; nil means time.Now.
	Now func() time.Time
}

// Notifier posts to one URL. Safe for concurrent use; it never retries.
type Notifier struct{ cfg Config }

// New checks cfg and returns a Notifier.
func New(cfg Config) (*Notifier, error) {
	var errs []error
	if err := alert.CheckURL("webhook", "url", cfg.URL); err != nil {
		errs = append(errs, err)
	}
	if cfg.Secret == "" {
		errs = append(errs, errors.New("webhook: secret is empty"))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Notifier{cfg: cfg}, nil
}

// Body is the JSON document POSTed: the message plus two rendered texts so
// a receiver can forward it without formatting its own.
type Body struct {
	Version  int           `json:"version"` // 1
	Headline string        `json:"headline"`
	Text     string        `json:"text"`
	Message  alert.Message `json:"message"`
}

// Send signs and posts m; any 2xx is success.
func (n *Notifier) Send(ctx context.Context, m alert.Message) error {
	body, err := json.Marshal(Body{Version: 1, Headline: m.Headline(), Text: m.PlainText(), Message: m})
	if err != nil {
		return &alert.Error{Provider: "webhook", Permanent: true, Err: err}
	}
	now := n.cfg.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	h := http.Header{}
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, "v1="+Sign(n.cfg.Secret, ts, body))
	if m.ID != "" {
		h.Set(HeaderDelivery, m.ID)
	}
	r, err := alert.Post(ctx, n.cfg.Client, "webhook", n.cfg.URL, "application/json", body, h, n.cfg.Secret)
	if err != nil {
		return err
	}
	if r.Status >= 200 && r.Status < 300 {
		return nil
	}
	return alert.StatusError("webhook", r, now, n.cfg.Secret, n.cfg.URL)
}

// Sign returns the hex HMAC-SHA256 of timestamp + "." + body under secret.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Errors Verify returns; a receiver answers 401 to all of them.
var (
	ErrNoSignature  = errors.New("webhook: missing signature or timestamp header")
	ErrBadSignature = errors.New("webhook: signature does not match")
	ErrStale        = errors.New("webhook: timestamp outside tolerance")
)

// Verify is the receiver's side: it checks that body (the raw bytes read,
// before any JSON decoding) was signed with secret at a timestamp within
// tolerance of now (tolerance ≤ 0 means DefaultTolerance). Recipe for other
// languages: read both headers; reject if |now − timestamp| > tolerance;
// compute hex(HMAC-SHA256(secret, timestamp + "." + body)); compare with the
// value after "v1=" in constant time. Within the tolerance a replayed
// request verifies, so receivers drop duplicates by X-Canaryd-Delivery.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, sig := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if ts == "" || sig == "" {
		return ErrNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not unix seconds", ErrStale, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s off", ErrStale, d.Round(time.Second))
	}
	for _, part := range strings.Split(sig, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(v)
		if err != nil {
			continue
		}
		want, _ := hex.DecodeString(Sign(secret, ts, body))
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}
