package source

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// HTTPJSON reads a number from a JSON document: GET URL (with the
// placeholders of Vars), then follow Path. Path is dot-separated keys and
// array indexes ("data.count", "items.0.value", "items[0].value"). The
// value may be a number, a numeric string or a boolean (true = 1).
type HTTPJSON struct {
	URL     string
	Path    string
	Headers map[string]string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
}

// Value fetches the document for v and reads the path.
func (h *HTTPJSON) Value(ctx context.Context, v Vars) (float64, error) {
	u := v.Expand(h.URL)
	b, err := get(ctx, h.Client, u, h.Headers)
	if err != nil {
		return 0, fmt.Errorf("http check: %w", err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return 0, fmt.Errorf("http check: answer is not JSON: %w", err)
	}
	x, err := Lookup(doc, h.Path)
	if err != nil {
		return 0, fmt.Errorf("http check: %w", err)
	}
	return x, nil
}

// SplitPath splits a JSON path into its steps; "" is the document itself.
func SplitPath(path string) ([]string, error) {
	path = strings.ReplaceAll(strings.ReplaceAll(path, "[", "."), "]", "")
	path = strings.TrimPrefix(strings.TrimPrefix(path, "$"), ".")
	if path == "" {
		return nil, nil
	}
	parts := strings.Split(path, ".")
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("json path %q has an empty step", path)
		}
	}
	return parts, nil
}

// Lookup follows path in a decoded JSON document and returns the number
// there. A missing key or index wraps ErrNoData.
func Lookup(doc any, path string) (float64, error) {
	steps, err := SplitPath(path)
	if err != nil {
		return 0, err
	}
	cur := doc
	for i, s := range steps {
		at := strings.Join(steps[:i+1], ".")
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[s]
			if !ok {
				return 0, fmt.Errorf("json path %q: no key %q: %w", at, s, ErrNoData)
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(s)
			if err != nil {
				return 0, fmt.Errorf("json path %q: %q is not an index of a list", at, s)
			}
			if n < 0 || n >= len(v) {
				return 0, fmt.Errorf("json path %q: index %d outside a list of %d: %w", at, n, len(v), ErrNoData)
			}
			cur = v[n]
		default:
			return 0, fmt.Errorf("json path %q: %q is under a %T, not an object or list", at, s, cur)
		}
	}
	switch v := cur.(type) {
	case float64:
		return v, nil
	case string:
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("json path %q: %q is not a number", path, v)
		}
		return x, nil
	case bool:
		if v {
			return 1, nil
		}
		return 0, nil
	case nil:
		return 0, fmt.Errorf("json path %q: null: %w", path, ErrNoData)
	}
	return 0, fmt.Errorf("json path %q: a %T, not a number", path, cur)
}
