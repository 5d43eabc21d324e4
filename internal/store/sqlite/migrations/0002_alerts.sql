-- v2: alert channels and their outbox, idempotency keys, leases.
CREATE TABLE alert_channels (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL,
	name       TEXT NOT NULL DEFAULT '',
	filter     TEXT,
	secret     BLOB,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	revision   INTEGER NOT NULL
);

CREATE TABLE outbox (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	channel      TEXT NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
	dedupe_key   TEXT NOT NULL DEFAULT '',
	event_id     INTEGER NOT NULL DEFAULT 0,
	payload      BLOB NOT NULL,
	status       TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	duplicates   INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	dedupe_until INTEGER,
	last_error   TEXT NOT NULL DEFAULT '',
	done_at      INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt);
CREATE INDEX outbox_dedupe ON outbox (channel, dedupe_key, dedupe_until);

CREATE TABLE idempotency (
	key          TEXT PRIMARY KEY,
	request_hash TEXT NOT NULL DEFAULT '',
	status       INTEGER NOT NULL,
	body         BLOB NOT NULL,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX idempotency_expires ON idempotency (expires_at);

CREATE TABLE leases (
	name        TEXT PRIMARY KEY,
	holder      TEXT NOT NULL,
	epoch       INTEGER NOT NULL,
	acquired_at INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL
);
