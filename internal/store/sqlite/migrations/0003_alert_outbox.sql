-- v3: the alert outbox that notify.Dispatcher consumes (the notify.Outbox
-- contract: merge pending repeats, throttle after a send, claim with a
-- lease), and named cursors into the event log. It replaces v2's outbox
-- table, which stays unused (forward-only migrations never drop in the
-- release that stops using a table).
CREATE TABLE alert_outbox (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	channel      TEXT NOT NULL,
	dedupe_key   TEXT NOT NULL,
	message      TEXT NOT NULL,
	count        INTEGER NOT NULL DEFAULT 1,
	state        TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,
	first_seen   INTEGER NOT NULL,
	last_seen    INTEGER NOT NULL,
	last_error   TEXT NOT NULL DEFAULT '',
	done_at      INTEGER
);
CREATE INDEX alert_outbox_due ON alert_outbox (state, next_attempt);
CREATE INDEX alert_outbox_key ON alert_outbox (channel, dedupe_key, state);

CREATE TABLE cursors (
	name       TEXT PRIMARY KEY,
	position   INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
