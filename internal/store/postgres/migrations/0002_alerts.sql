-- v2: alert channels and their outbox, idempotency keys, leases.
CREATE TABLE alert_channels (
	id         text PRIMARY KEY,
	kind       text NOT NULL,
	name       text NOT NULL DEFAULT '',
	filter     json,
	secret     bytea,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	revision   bigint NOT NULL
);

CREATE TABLE outbox (
	id           bigserial PRIMARY KEY,
	channel      text NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
	dedupe_key   text NOT NULL DEFAULT '',
	event_id     bigint NOT NULL DEFAULT 0,
	payload      bytea NOT NULL,
	status       text NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
	attempts     integer NOT NULL DEFAULT 0,
	duplicates   integer NOT NULL DEFAULT 0,
	created_at   timestamptz NOT NULL,
	next_attempt timestamptz NOT NULL,
	dedupe_until timestamptz,
	last_error   text NOT NULL DEFAULT '',
	done_at      timestamptz
);
CREATE INDEX outbox_due ON outbox (status, next_attempt);
CREATE INDEX outbox_dedupe ON outbox (channel, dedupe_key, dedupe_until);

CREATE TABLE idempotency (
	key          text PRIMARY KEY,
	request_hash text NOT NULL DEFAULT '',
	status       integer NOT NULL,
	body         bytea NOT NULL,
	created_at   timestamptz NOT NULL,
	expires_at   timestamptz NOT NULL
);
CREATE INDEX idempotency_expires ON idempotency (expires_at);

CREATE TABLE leases (
	name        text PRIMARY KEY,
	holder      text NOT NULL,
	epoch       bigint NOT NULL,
	acquired_at timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL
);
