package wire

import "time"

// AlertSettings are a channel's provider fields; only those of its kind
// are used:
//
//	slack, discord: url
//	telegram:       token, chat_id, thread, threads, base_url
//	email:          smtp, username, password, from, to, tls
//	webhook:        url, secret
//
// In a request secrets (url, token, password, secret) are sent in clear;
// in every answer they are masked ("https://hooks.slack.com/****",
// "****Wx3Q", "****"): the API never returns a secret.
type AlertSettings struct {
	URL      string           `json:"url,omitempty"`
	Token    string           `json:"token,omitempty"`
	ChatID   string           `json:"chat_id,omitempty"`
	Thread   int64            `json:"thread,omitempty"`
	Threads  map[string]int64 `json:"threads,omitempty"`
	BaseURL  string           `json:"base_url,omitempty"`
	SMTP     string           `json:"smtp,omitempty"`
	Username string           `json:"username,omitempty"`
	Password string           `json:"password,omitempty"`
	From     string           `json:"from,omitempty"`
	To       []string         `json:"to,omitempty"`
	TLS      string           `json:"tls,omitempty"`
	Secret   string           `json:"secret,omitempty"`
}

// AlertRoute selects the events a channel receives; the zero value takes
// every event.
type AlertRoute struct {
	Services    []string `json:"services,omitempty"`
	Types       []string `json:"types,omitempty"`
	MinSeverity string   `json:"min_severity,omitempty" openapi:"enum=info|warning|critical"`
}

// AlertChannel is one alert channel as listed: where it is declared
// (config: the file, read-only; store: added through the API), whether it
// delivers, and its settings with every secret masked.
type AlertChannel struct {
	Name   string `json:"name"`
	Kind   string `json:"kind" openapi:"enum=slack|telegram|email|webhook|discord"`
	Source string `json:"source" openapi:"enum=config|store"`
	// Active is false when the channel is disabled or cannot be used
	// (Error says why).
	Active   bool   `json:"active"`
	Disabled bool   `json:"disabled,omitempty"`
	Error    string `json:"error,omitempty"`
	// Target is a one-line, secret-free summary: the masked URL, the chat,
	// or the recipients and mail server.
	Target   string        `json:"target"`
	Settings AlertSettings `json:"settings"`
	Route    AlertRoute    `json:"route"`
	// Throttle and Timeout are Go durations ("10m0s"); RatePerMinute and
	// Burst shape the channel's token bucket. Zero means the default.
	Throttle      string  `json:"throttle,omitempty"`
	RatePerMinute float64 `json:"rate_per_minute,omitempty"`
	Burst         int     `json:"burst,omitempty"`
	Timeout       string  `json:"timeout,omitempty"`
	// Revision is the store record's revision (source store only).
	Revision int64 `json:"revision,omitempty"`
}

// AlertChannelList answers GET /api/v1/alerts/channels: the file's
// channels first, then those added at run time.
type AlertChannelList struct {
	Channels []AlertChannel `json:"channels"`
}

// AddAlertChannelRequest adds a channel at run time (POST
// /api/v1/alerts/channels). Name defaults to the kind. Throttle and
// Timeout are Go durations; empty means the default.
type AddAlertChannelRequest struct {
	Name          string        `json:"name,omitempty"`
	Kind          string        `json:"kind" openapi:"enum=slack|telegram|email|webhook|discord"`
	Settings      AlertSettings `json:"settings"`
	Route         *AlertRoute   `json:"route,omitempty"`
	Disabled      bool          `json:"disabled,omitempty"`
	Throttle      string        `json:"throttle,omitempty"`
	RatePerMinute float64       `json:"rate_per_minute,omitempty"`
	Burst         int           `json:"burst,omitempty"`
	Timeout       string        `json:"timeout,omitempty"`
}

// AlertTestRequest is the body of POST /api/v1/alerts/test; an empty body
// or channel tests every active channel.
type AlertTestRequest struct {
	Channel string `json:"channel,omitempty"`
}

// AlertTestResult is one channel's answer to a test message. Error never
// carries a secret.
type AlertTestResult struct {
	Channel string `json:"channel"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	// Took is how long the provider took, as a Go duration.
	Took string `json:"took"`
}

// AlertTestReport answers POST /api/v1/alerts/test with 200 whatever the
// providers said: OK is true when every result is.
type AlertTestReport struct {
	OK      bool              `json:"ok"`
	Results []AlertTestResult `json:"results"`
}

// DeadAlert is an alert that exhausted its tries (or met a permanent
// error) and waits for an operator: fix the channel, then replay it.
type DeadAlert struct {
	ID       int64  `json:"id"`
	Channel  string `json:"channel"`
	Service  string `json:"service,omitempty"`
	Type     string `json:"type"`
	Severity string `json:"severity,omitempty"`
	Title    string `json:"title"`
	// Count is how many identical events the alert stands for.
	Count     int       `json:"count"`
	Attempts  int       `json:"attempts"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// LastError is the provider's last answer (secrets scrubbed).
	LastError string    `json:"last_error,omitempty"`
	DeadAt    time.Time `json:"dead_at"`
}

// DeadAlertList answers GET /api/v1/alerts/dead, newest first.
type DeadAlertList struct {
	Alerts []DeadAlert `json:"alerts"`
}
