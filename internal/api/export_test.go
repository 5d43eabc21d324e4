package api

import "net/http"

// Patterns returns the mux patterns New registered, so the tests can
// compare them with the OpenAPI document.
func Patterns(h http.Handler) []string { return h.(*api).patterns }
