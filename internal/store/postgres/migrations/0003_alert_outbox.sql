-- v3: the alert outbox that notify.Dispatcher consumes (the notify.Outbox
-- contract: merge pending repeats, throttle after a send, claim with a
-- lease), and named cursors into the event log. It replaces v2's outbox
-- table, which stays unused (forward-only migrations never drop in the
-- release that stops using a table).
CREATE TABLE alert_outbox (
	id           bigserial PRIMARY KEY,
	channel      text NOT NULL,
	dedupe_key   text NOT NULL,
	message      text NOT NULL,
	count        integer NOT NULL DEFAULT 1,
	state        text NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
	attempts     integer NOT NULL DEFAULT 0,
	next_attempt timestamptz NOT NULL,
	first_seen   timestamptz NOT NULL,
	last_seen    timestamptz NOT NULL,
	last_error   text NOT NULL DEFAULT '',
	done_at      timestamptz
);
CREATE INDEX alert_outbox_due ON alert_outbox (state, next_attempt);
CREATE INDEX alert_outbox_key ON alert_outbox (channel, dedupe_key, state);

CREATE TABLE cursors (
	name       text PRIMARY KEY,
	position   bigint NOT NULL,
	updated_at timestamptz NOT NULL
);
