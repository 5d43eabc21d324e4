package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/canaryd/canaryd/internal/config"
)

// principal is who a valid token belongs to.
type principal struct {
	name  string // recorded as the actor of every event
	admin bool
}

// authenticator checks bearer tokens. Values are kept as SHA-256 sums and
// every configured token is compared, in constant time, on every request:
// neither the length nor the position of a token leaks through timing.
type authenticator struct {
	tokens []tokenSum
}

type tokenSum struct {
	sum [sha256.Size]byte
	p   principal
}

func newAuthenticator(tokens []config.Token) *authenticator {
	a := &authenticator{}
	for _, t := range tokens {
		if t.Value == "" {
			continue // config validation refuses these; never let "" in
		}
		a.tokens = append(a.tokens, tokenSum{sum: sha256.Sum256([]byte(t.Value)), p: principal{name: t.Name, admin: t.Role == "admin"}})
	}
	return a
}

// check returns the principal of the request's bearer token.
func (a *authenticator) check(r *http.Request) (principal, bool) {
	scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return principal{}, false
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return principal{}, false
	}
	sum := sha256.Sum256([]byte(value))
	found := -1
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].sum[:]) == 1 {
			found = i // no early exit: every token costs the same
		}
	}
	if found < 0 {
		return principal{}, false
	}
	return a.tokens[found].p, true
}

// unauthorized answers 401 with the challenge RFC 6750 asks for.
func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="canaryd"`)
	writeJSON(w, http.StatusUnauthorized, errorBody(&apiError{status: http.StatusUnauthorized,
		msg: "a valid bearer token is required (Authorization: Bearer TOKEN; tokens are set in admin.tokens of the config)"}))
}

// RequireToken wraps h so that it answers only requests with a valid
// bearer token of any role; others get 401. The server uses it for
// /metrics when admin.metrics_auth is set.
func RequireToken(tokens []config.Token, h http.Handler) http.Handler {
	a := newAuthenticator(tokens)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.check(r); !ok {
			unauthorized(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}
