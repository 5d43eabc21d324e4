// Package balance picks the endpoint of a build that serves one request.
//
// Three pieces, each with its own lifetime:
//
//   - An [Endpoint] is one replica (host:port) and its live state: requests in
//     flight, the verdict of the active health checks, and passive ejection
//     (consecutive failures take it out of rotation for a cooldown that backs
//     off). All of it lives in atomics, read on every pick without locks.
//   - A [Pool] owns the endpoints of one service and hands out the same
//     *Endpoint for the same address across routing-table rebuilds, so a
//     rebuild does not forget that a replica is down or busy.
//   - A [Set] is the endpoints of one build in one routing table, built once
//     with a [Policy] and never changed; [Set.Pick] is the request-path call.
//
// The proxy owns the request: it calls [Set.Pick], then [Endpoint.Begin]
// before sending and [Endpoint.End] (or [Endpoint.EndNeutral]) after.
// Retries are the proxy's; Pick's exclude argument lets it ask for another
// endpoint.
package balance
