package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// idPattern is what service and build ids may look like (the config's
// rule): no slashes, spaces, dots first or other surprises in a path.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkID(field, v string) error {
	if !idPattern.MatchString(v) {
		return badRequest(field, fmt.Sprintf("%q is not a valid id (1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit)", v))
	}
	return nil
}

// decode reads one JSON object from body into v, refusing unknown fields,
// wrong types and trailing data, with the field at fault named. An empty
// body is allowed only when optional (every field of v has a default).
func decode(body []byte, v any, optional bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return badRequest("", "request body is empty: want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, v)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("", "unexpected data after the JSON object")
	}
	return nil
}

func decodeError(err error, v any) error {
	var (
		syn   *json.SyntaxError
		typed *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return badRequest("", fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn))
	case errors.As(err, &typed):
		field := typed.Field
		if field == "" {
			return badRequest("", fmt.Sprintf("want a JSON object, got %s", typed.Value))
		}
		return badRequest(field, fmt.Sprintf("want %s, got %s", jsonKind(typed.Type), typed.Value))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "invalid JSON: unexpected end of the body")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return badRequest(name, fmt.Sprintf("unknown field (known: %s)", strings.Join(jsonFields(reflect.TypeOf(v)), ", ")))
	}
	return badRequest("", "invalid JSON: "+err.Error())
}

// jsonKind names a Go type the way a JSON author thinks of it.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// jsonFields lists the JSON names of a struct's fields.
func jsonFields(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	if t.Kind() != reflect.Struct {
		return out
	}
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
