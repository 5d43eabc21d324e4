package cohort

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
)

// SourceKind says where a user key comes from.
type SourceKind uint8

// The sources of a user key.
const (
	FromHeader SourceKind = iota + 1
	FromCookie
	FromJWTClaim
	FromClientAddress
)

// Source is one configured way to find a user key.
type Source struct {
	Kind SourceKind
	Name string // header (canonical form, see http.CanonicalHeaderKey), cookie or claim name
}

// MaxKeyLen bounds a user key; longer values are ignored so a hostile
// client cannot make the gateway hash megabytes.
const MaxKeyLen = 256

// UserKey returns the first key that sources find in r, or "" when none
// does. clientIP is the client's address as the gateway determined it (after
// trusted proxies). The JWT claim is decoded for routing only: its signature
// is not checked, so it must never be trusted for anything else.
func UserKey(r *http.Request, sources []Source, clientIP string) (key string, from SourceKind) {
	for _, s := range sources {
		switch s.Kind {
		case FromHeader:
			key = headerValue(r.Header, s.Name)
		case FromCookie:
			key = cookieValue(r, s.Name)
		case FromJWTClaim:
			key = JWTClaim(r.Header.Get("Authorization"), s.Name)
		case FromClientAddress:
			key = clientIP
		}
		if key != "" && len(key) <= MaxKeyLen {
			return key, s.Kind
		}
	}
	return "", 0
}

// headerValue is Header.Get for a name already in canonical form (Compile
// guarantees it), which saves the allocation of canonicalising per request.
func headerValue(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// cookieValue finds one cookie without parsing all of them into a slice.
func cookieValue(r *http.Request, name string) string {
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if ok && k == name {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}

// JWTClaim returns claim as a string from a "Bearer header.payload.sig"
// value, or "" when it is absent, not a string or number, or the token is
// malformed. No signature is verified.
func JWTClaim(authorization, claim string) string {
	tok, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok {
		return ""
	}
	_, rest, ok := strings.Cut(strings.TrimSpace(tok), ".")
	if !ok {
		return ""
	}
	payload, _, ok := strings.Cut(rest, ".")
	if !ok || len(payload) > 8192 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	if err != nil {
		return ""
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(raw, &claims) != nil {
		return ""
	}
	v, ok := claims[claim]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String()
	}
	return ""
}
