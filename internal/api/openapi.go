package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/api/wire"
)

// openAPI builds the OpenAPI 3 document from the route table; schemas come
// from the wire types by reflection, so the document describes exactly
// what the handlers decode and encode.
func openAPI(routes []route) map[string]any {
	g := &schemas{defs: map[string]any{}}
	errRef := g.of(reflect.TypeFor[wire.Error]())
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		op := map[string]any{
			"operationId": rt.op,
			"summary":     rt.summary,
			"tags":        []string{rt.tag},
			"x-role":      map[bool]string{true: "admin", false: "viewer"}[rt.admin],
		}
		var params []any
		for _, name := range pathParams(rt.path) {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true,
				"schema": map[string]any{"type": "string", "pattern": idPattern.String()}})
		}
		for _, p := range rt.query {
			s := map[string]any{"type": p.typ}
			switch p.typ {
			case "date-time":
				s = map[string]any{"type": "string", "format": "date-time"}
			case "integer":
				s["format"] = "int64"
			}
			if p.repeat {
				s = map[string]any{"type": "array", "items": s}
			}
			params = append(params, map[string]any{"name": p.name, "in": "query", "description": p.desc, "schema": s,
				"explode": true})
		}
		if rt.ifMatch {
			params = append(params, map[string]any{"name": "If-Match", "in": "header",
				"description": `the service revision read before (the ETag of getService, e.g. "12"); 412 if the service changed since`,
				"schema":      map[string]any{"type": "string"}})
		}
		if rt.method == http.MethodPost {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header",
				"description": "a retry with the same key and request gets the stored answer and is not applied again; the same key with another request gets 422",
				"schema":      map[string]any{"type": "string", "maxLength": 255}})
		}
		if rt.op == "streamEvents" {
			params = append(params, map[string]any{"name": "Last-Event-ID", "in": "header",
				"description": "resume after this event id", "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.body != nil {
			op["requestBody"] = map[string]any{"required": !rt.bodyOptional,
				"content": map[string]any{"application/json": map[string]any{"schema": g.of(reflect.TypeOf(rt.body))}}}
		}
		ok := map[string]any{"description": http.StatusText(rt.status)}
		switch {
		case rt.resp != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.of(reflect.TypeOf(rt.resp))}}
		case rt.contentType != "":
			ok["content"] = map[string]any{rt.contentType: map[string]any{"schema": map[string]any{"type": map[bool]string{true: "string", false: "object"}[rt.contentType == "text/event-stream"]}}}
		}
		if rt.op == "getService" {
			ok["headers"] = map[string]any{"ETag": map[string]any{"description": "the service revision", "schema": map[string]any{"type": "string"}}}
		}
		errResp := func(desc string) map[string]any {
			return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
		}
		resps := map[string]any{strconv.Itoa(rt.status): ok,
			"400": errResp("bad input; field names it"),
			"401": errResp("no valid bearer token"),
			"500": errResp("server fault")}
		if rt.admin {
			resps["403"] = errResp("the token has the viewer role")
			resps["409"] = errResp("illegal in the current state (legal says what is allowed) or a concurrent change")
		}
		if strings.Contains(rt.path, "{") {
			resps["404"] = errResp("no such service or build")
		}
		if rt.ifMatch {
			resps["412"] = errResp("If-Match is stale: the service changed since it was read")
		}
		if rt.body != nil {
			resps["413"] = errResp("body too large")
			resps["415"] = errResp("Content-Type is not application/json")
		}
		if rt.method == http.MethodPost {
			resps["422"] = errResp("Idempotency-Key reused for a different request")
		}
		op["responses"] = resps
		if paths[rt.path] == nil {
			paths[rt.path] = map[string]any{}
		}
		paths[rt.path][strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "canaryd admin API", "version": "v1",
			"description": "Progressive delivery: services, builds, canary releases and their event log. " +
				"Every route needs a bearer token; routes with x-role admin need an admin token. See docs/api.md."},
		"security": []any{map[string]any{"bearer": []string{}}},
		"paths":    paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas":         g.defs,
		},
	}
}

var wildcard = regexp.MustCompile(`\{([a-z_]+)\}`)

func pathParams(p string) []string {
	var out []string
	for _, m := range wildcard.FindAllStringSubmatch(p, -1) {
		out = append(out, m[1])
	}
	return out
}

// schemas turns Go types into JSON Schema (the OpenAPI 3.0 dialect),
// with named structs under components/schemas.
type schemas struct{ defs map[string]any }

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

func (g *schemas) of(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"description": "any JSON value"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := g.of(t.Elem())
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.of(t.Elem())}
	case reflect.Struct:
		name := t.Name()
		ref := map[string]any{"$ref": "#/components/schemas/" + name}
		if _, ok := g.defs[name]; ok {
			return ref
		}
		g.defs[name] = map[string]any{} // placeholder against recursion
		props := map[string]any{}
		var required []string
		for f := range t.Fields() {
			if !f.IsExported() {
				continue
			}
			tag, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "-" {
				continue
			}
			if tag == "" {
				tag = f.Name
			}
			prop := g.of(f.Type)
			if hint := f.Tag.Get("openapi"); hint != "" {
				prop = withHints(prop, hint)
			}
			props[tag] = prop
			if !strings.Contains(opts, "omitempty") {
				required = append(required, tag)
			}
		}
		def := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if required != nil {
			def["required"] = required
		}
		g.defs[name] = def
		return ref
	}
	return map[string]any{}
}

// withHints adds the constraints of a field's `openapi` tag to its schema:
// comma-separated minimum=N, maximum=N, enum=a|b|c.
func withHints(s map[string]any, hint string) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		out[k] = v
	}
	for kv := range strings.SplitSeq(hint, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "minimum", "maximum":
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				panic("api: openapi tag " + strconv.Quote(hint) + ": " + err.Error()) // a programming error, caught by the tests
			}
			out[k] = n
		case "enum":
			out[k] = strings.Split(v, "|")
		}
	}
	return out
}
