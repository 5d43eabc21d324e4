package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/canaryd/canaryd/internal/store"
)

// lockTTL bounds how long a request holding an Idempotency-Key keeps a
// concurrent retry with the same key waiting (answered 409 meanwhile).
const lockTTL = 30 * time.Second

// idempotent runs a POST that carries an Idempotency-Key. The first
// request with a key runs and its answer (any status below 500) is stored
// under the caller's token name and the key; a retry with the same key and
// the same request gets that answer again, with the header
// Idempotent-Replayed: true, and is not applied again. The same key with a
// different request is refused with 422.
//
// While the first request runs, a short-lived lock record in the store
// (PutIdempotency refuses a second one) makes concurrent retries wait with
// 409 instead of running twice, on every replica sharing the store. A 5xx
// answer is not stored: the request may be retried once the lock expires.
func (a *api) idempotent(w http.ResponseWriter, rt route, c *call, key string) {
	if len(key) > 255 || !printable(key) {
		a.fail(w, rt, badRequest("Idempotency-Key", "want 1 to 255 printable ASCII characters"))
		return
	}
	ctx := c.r.Context()
	full := "api:" + c.who.name + ":" + key
	sum := sha256.New()
	for _, s := range []string{c.r.Method, c.r.URL.Path, c.r.Header.Get("If-Match")} {
		sum.Write([]byte(s))
		sum.Write([]byte{0})
	}
	sum.Write(c.body)
	hash := hex.EncodeToString(sum.Sum(nil))

	replay := func() bool {
		rec, err := a.lookup(ctx, full)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return false
		case err != nil:
			a.fail(w, rt, err)
		case rec.RequestHash != hash:
			a.fail(w, rt, &apiError{status: http.StatusUnprocessableEntity, field: "Idempotency-Key",
				msg: strconv.Quote(key) + " was already used for a different request; use a new key for a new request"})
		default:
			w.Header().Set("Idempotent-Replayed", "true")
			writeJSON(w, rec.Status, rec.Body)
		}
		return true
	}
	if replay() {
		return
	}
	now := a.now()
	err := a.store.Update(ctx, func(tx store.Tx) error {
		return tx.PutIdempotency(ctx, store.Idempotency{Key: "lock:" + full, RequestHash: hash, ExpiresAt: now.Add(lockTTL)}, now)
	})
	if errors.Is(err, store.ErrConflict) {
		if replay() { // it finished meanwhile
			return
		}
		a.fail(w, rt, &apiError{status: http.StatusConflict, field: "Idempotency-Key",
			msg: "a request with this key is still in progress; retry in a few seconds"})
		return
	}
	if err != nil {
		a.fail(w, rt, err)
		return
	}
	if replay() { // it finished between the first look and the lock
		return
	}
	st, body, etag := a.run(rt, c)
	if st < 500 {
		now := a.now()
		ctx := context.WithoutCancel(ctx) // the answer exists: keep it even if the client left
		err := a.store.Update(ctx, func(tx store.Tx) error {
			// Expired records (and locks) go whenever a new one is stored,
			// so the table stays as small as a day of keys.
			if _, err := tx.PurgeIdempotency(ctx, now); err != nil {
				return err
			}
			return tx.PutIdempotency(ctx, store.Idempotency{Key: full, RequestHash: hash, Status: st, Body: body, ExpiresAt: now.Add(a.idemTTL)}, now)
		})
		if err != nil {
			a.log.Warn("admin api: storing an idempotent response failed; a retry would run again", "op", rt.op, "err", err)
		}
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	writeJSON(w, st, body)
}

func (a *api) lookup(ctx context.Context, key string) (store.Idempotency, error) {
	var rec store.Idempotency
	err := a.store.View(ctx, func(r store.Reader) error {
		var err error
		rec, err = r.GetIdempotency(ctx, key, a.now())
		return err
	})
	return rec, err
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
