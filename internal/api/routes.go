package api

import (
	"net/http"

	"github.com/canaryd/canaryd/internal/api/wire"
)

// route is one row of the API: everything the mux, the auth check, the
// request handling and the OpenAPI document need to know about it.
type route struct {
	method, path string
	op           string // OpenAPI operationId; also names the route in logs
	summary      string
	tag          string
	// admin: the route changes something, so a viewer gets 403.
	admin bool
	// ifMatch: a mutation of one service that honours If-Match.
	ifMatch bool
	// query are the query parameters the route reads.
	query []param
	// body is a value of the request body's type (nil: no body);
	// bodyOptional allows an empty body.
	body         any
	bodyOptional bool
	// resp is a value of the success body's type; status its status.
	resp   any
	status int
	// handle serves a JSON route; raw serves a route that writes its own
	// answer (the event stream, the OpenAPI document).
	handle func(c *call) (any, error)
	raw    func(w http.ResponseWriter, r *http.Request)
	// contentType of a raw route's success answer.
	contentType string
}

// param is one query parameter.
type param struct {
	name, typ, desc string // typ: string, integer, number, date-time
	repeat          bool   // may be given several times (or comma-separated)
}

// table is the API. Paths use the mux's {name} wildcards, which are also
// OpenAPI's path templates.
func (a *api) table() []route {
	reason := []param{{name: "reason", typ: "string", desc: "why, recorded on the event"}}
	eventFilters := []param{
		{name: "service", typ: "string", desc: "only events of this service"},
		{name: "build", typ: "string", desc: "only events about this build"},
		{name: "type", typ: "string", desc: "only events of these types (e.g. release.promoted)", repeat: true},
	}
	op := func(method, path, id, summary string, body any, optional bool, h func(*call) (any, error)) route {
		return route{method: method, path: Prefix + path, op: id, summary: summary, tag: "release", admin: true, ifMatch: true,
			body: body, bodyOptional: optional, resp: wire.Result{}, status: http.StatusOK, handle: h}
	}
	return []route{
		{method: "GET", path: Prefix + "/services", op: "listServices", tag: "services",
			summary: "List services with their stable, canary, traffic and revision.",
			resp:    wire.ServiceList{}, status: http.StatusOK, handle: a.listServices},
		{method: "GET", path: Prefix + "/services/{service}", op: "getService", tag: "services",
			summary: "Get one service with its builds. The ETag header is its revision, for If-Match.",
			resp:    wire.Service{}, status: http.StatusOK, handle: a.getService},
		{method: "GET", path: Prefix + "/builds", op: "listBuilds", tag: "builds",
			summary: "List builds. Deleted builds are left out unless state=deleted is asked for.",
			query: []param{{name: "service", typ: "string", desc: "only builds of this service"},
				{name: "state", typ: "string", desc: "only builds in these states: deployed, canary, stable, deleted", repeat: true}},
			resp: wire.BuildList{}, status: http.StatusOK, handle: a.listBuilds},
		{method: "GET", path: Prefix + "/services/{service}/builds/{build}", op: "getBuild", tag: "builds",
			summary: "Get one build with its endpoints.",
			resp:    wire.Build{}, status: http.StatusOK, handle: a.getBuild},
		{method: "POST", path: Prefix + "/services/{service}/builds", op: "registerBuild", tag: "builds", admin: true,
			summary: "Register a build and its endpoints (what a build calls at start-up). Registering again with the same id and version is harmless.",
			body:    wire.RegisterRequest{}, resp: wire.Build{}, status: http.StatusOK, handle: a.register},
		{method: "POST", path: Prefix + "/services/{service}/builds/{build}/heartbeat", op: "heartbeat", tag: "builds", admin: true,
			summary: "Keep an endpoint routable for its TTL. 404 means: register again.",
			body:    wire.EndpointRequest{}, resp: wire.Empty{}, status: http.StatusOK, handle: a.heartbeat},
		{method: "POST", path: Prefix + "/services/{service}/builds/{build}/deregister", op: "deregister", tag: "builds", admin: true,
			summary: "Remove one endpoint of a build (a replica shutting down).",
			body:    wire.EndpointRequest{}, resp: wire.Empty{}, status: http.StatusOK, handle: a.deregister},
		{method: "DELETE", path: Prefix + "/services/{service}/builds/{build}", op: "deleteBuild", tag: "builds", admin: true, ifMatch: true,
			summary: "Delete a deployed build (never the stable or the canary).",
			query:   reason, resp: wire.Result{}, status: http.StatusOK, handle: a.deleteBuild},
		op("POST", "/services/{service}/stable", "setStable", "Make a deployed build the service's first stable build.",
			wire.SetStableRequest{}, false, a.setStable),
		op("POST", "/services/{service}/canary", "startCanary", "Start a deployed build as the canary at a first traffic percentage.",
			wire.StartCanaryRequest{}, false, a.startCanary),
		op("POST", "/services/{service}/traffic", "setTraffic", "Move the canary's share of traffic (0 to 100).",
			wire.TrafficRequest{}, false, a.setTraffic),
		op("POST", "/services/{service}/promote", "promote", "Make the canary stable; the old stable goes back to deployed. While the release controller is still analysing the canary this is refused (409) unless force is true with a reason, which skips the remaining analysis and is recorded.",
			wire.PromoteRequest{}, true, a.promote),
		op("POST", "/services/{service}/abort", "abort", "Abort the release: roll the canary back (traffic 0, back to deployed) and close the release as aborted. A reason is required.",
			wire.ReasonRequest{}, false, a.abort),
		op("POST", "/services/{service}/approve", "approve", "Approve the manual gate the release is held at, so it goes on to the next step (or promotion).",
			wire.ReasonRequest{}, true, a.approve),
		{method: "GET", path: Prefix + "/services/{service}/compare", op: "compare", tag: "release",
			summary: "The live comparison the judge sees for the service's active release, per metric: stable, canary, difference, bounds, evidence against its threshold, result. 404 when no release is active.",
			resp:    wire.Comparison{}, status: http.StatusOK, handle: a.compare},
		{method: "GET", path: Prefix + "/controller", op: "getController", tag: "release",
			summary: "Which replica holds the release controller's lease, and how far each replica has published the active releases' judged traffic.",
			resp:    wire.Controller{}, status: http.StatusOK, handle: a.controller},
		{method: "GET", path: Prefix + "/releases", op: "listReleases", tag: "release",
			summary: "Release records, newest first: builds, steps reached, verdict, outcome, duration, users exposed and harmed.",
			query: []param{{name: "service", typ: "string", desc: "only releases of this service"},
				{name: "limit", typ: "integer", desc: "page size, 1 to 1000 (default 100)"}},
			resp: wire.ReleaseList{}, status: http.StatusOK, handle: a.listReleases},
		op("POST", "/services/{service}/rollback", "rollback", "Send every user back to stable: traffic 0, the canary back to deployed.",
			wire.ReasonRequest{}, true, a.rollback),
		op("POST", "/services/{service}/pause", "pause", "Hold the release controller's automatic steps.",
			wire.ReasonRequest{}, true, a.pause),
		op("POST", "/services/{service}/resume", "resume", "Let the release controller's automatic steps go on.",
			wire.ReasonRequest{}, true, a.resume),
		op("POST", "/services/{service}/cohort/fresh", "freshCohort", "Move the cohort window to buckets no earlier canary used.",
			wire.ReasonRequest{}, true, a.freshCohort),
		op("POST", "/services/{service}/cohort/reset", "resetCohorts", "Forget earlier canaries' windows so fresh cohorts may reuse every bucket.",
			wire.ReasonRequest{}, true, a.resetCohorts),
		{method: "GET", path: Prefix + "/events", op: "listEvents", tag: "events",
			summary: "One page of the event log, oldest first (order=desc: newest first).",
			query: append(eventFilters,
				param{name: "since", typ: "date-time", desc: "only events at or after this time (RFC 3339)"},
				param{name: "until", typ: "date-time", desc: "only events before this time (RFC 3339)"},
				param{name: "after_id", typ: "integer", desc: "only events with a larger id (paging forwards)"},
				param{name: "before_id", typ: "integer", desc: "only events with a smaller id (paging backwards)"},
				param{name: "order", typ: "string", desc: "asc (default) or desc"},
				param{name: "limit", typ: "integer", desc: "page size, 1 to 1000 (default 100)"}),
			resp: wire.EventPage{}, status: http.StatusOK, handle: a.listEvents},
		{method: "GET", path: Prefix + "/events/stream", op: "streamEvents", tag: "events",
			summary: "Server-sent events: each new event as `id: ID`, `event: TYPE`, `data: JSON`. Resumes after the Last-Event-ID header (or after_id); without either, starts with the next event. Comment lines keep the stream alive.",
			query:   append(eventFilters, param{name: "after_id", typ: "integer", desc: "start after this event id (as Last-Event-ID)"}),
			status:  http.StatusOK, raw: a.stream, contentType: "text/event-stream"},
		{method: "GET", path: Prefix + "/alerts/channels", op: "listAlertChannels", tag: "alerts",
			summary: "List alert channels: the config file's (read-only) first, then those added at run time. Secrets are masked.",
			resp:    wire.AlertChannelList{}, status: http.StatusOK, handle: a.listAlertChannels},
		{method: "POST", path: Prefix + "/alerts/channels", op: "addAlertChannel", tag: "alerts", admin: true,
			summary: "Add an alert channel at run time: kind and settings, secrets in clear. They are stored encrypted with alerts.secret_key and never returned.",
			body:    wire.AddAlertChannelRequest{}, resp: wire.AlertChannel{}, status: http.StatusCreated, handle: a.addAlertChannel},
		{method: "DELETE", path: Prefix + "/alerts/channels/{name}", op: "removeAlertChannel", tag: "alerts", admin: true,
			summary: "Remove a channel added at run time (409 for a channel of the config file). Alerts still queued for it go dead.",
			resp:    wire.Empty{}, status: http.StatusOK, handle: a.removeAlertChannel},
		{method: "POST", path: Prefix + "/alerts/test", op: "testAlerts", tag: "alerts", admin: true,
			summary: "Send a test message now to one channel, or to every active channel, and report each provider's answer (200 whatever they said).",
			body:    wire.AlertTestRequest{}, bodyOptional: true, resp: wire.AlertTestReport{}, status: http.StatusOK, handle: a.testAlerts},
		{method: "GET", path: Prefix + "/alerts/dead", op: "listDeadAlerts", tag: "alerts",
			summary: "Alerts that could not be delivered after their tries, newest first, with the last error.",
			query:   []param{{name: "limit", typ: "integer", desc: "page size, 1 to 1000 (default 100)"}},
			resp:    wire.DeadAlertList{}, status: http.StatusOK, handle: a.listDeadAlerts},
		{method: "POST", path: Prefix + "/alerts/dead/{id}/replay", op: "replayAlert", tag: "alerts", admin: true,
			summary: "Make a dead alert pending again, due now, with its tries reset (after fixing the channel).",
			resp:    wire.Empty{}, status: http.StatusOK, handle: a.replayAlert},
		{method: "GET", path: Prefix + "/openapi.json", op: "openapi", tag: "meta",
			summary: "This document.",
			status:  http.StatusOK, raw: a.serveOpenAPI, contentType: "application/json"},
	}
}

func (a *api) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.openapi)
}
