-- v1: release state, builds, endpoints, the event log, release records and
-- policy overrides. Times are INTEGER microseconds since the Unix epoch, UTC.
CREATE TABLE services (
	name          TEXT PRIMARY KEY,
	canary        TEXT NOT NULL DEFAULT '',
	traffic       REAL NOT NULL DEFAULT 0,
	window_offset INTEGER NOT NULL DEFAULT 0,
	used_windows  TEXT NOT NULL DEFAULT '[]',
	paused        INTEGER NOT NULL DEFAULT 0,
	updated_at    INTEGER NOT NULL,
	revision      INTEGER NOT NULL
);

CREATE TABLE builds (
	service       TEXT NOT NULL REFERENCES services (name) ON DELETE CASCADE,
	id            TEXT NOT NULL,
	version       TEXT NOT NULL DEFAULT '',
	labels        TEXT NOT NULL DEFAULT '{}',
	changelog     TEXT NOT NULL DEFAULT '',
	state         TEXT NOT NULL CHECK (state IN ('deployed', 'canary', 'stable', 'deleted')),
	registered_by TEXT NOT NULL DEFAULT '',
	registered_at INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	revision      INTEGER NOT NULL,
	PRIMARY KEY (service, id)
);
-- At most one stable and one canary build per service, whatever the caller does.
CREATE UNIQUE INDEX builds_one_stable ON builds (service) WHERE state = 'stable';
CREATE UNIQUE INDEX builds_one_canary ON builds (service) WHERE state = 'canary';

CREATE TABLE endpoints (
	service        TEXT NOT NULL,
	build          TEXT NOT NULL,
	addr           TEXT NOT NULL,
	last_heartbeat INTEGER NOT NULL,
	ttl_ms         INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (service, build, addr),
	FOREIGN KEY (service, build) REFERENCES builds (service, id) ON DELETE CASCADE
);

CREATE TABLE events (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	time     INTEGER NOT NULL,
	service  TEXT NOT NULL DEFAULT '',
	type     TEXT NOT NULL,
	severity TEXT NOT NULL DEFAULT '',
	actor    TEXT NOT NULL DEFAULT '',
	build    TEXT NOT NULL DEFAULT '',
	reason   TEXT NOT NULL DEFAULT '',
	before   TEXT,
	after    TEXT,
	details  TEXT
);
CREATE INDEX events_service_id ON events (service, id);
CREATE INDEX events_time ON events (time);

CREATE TABLE releases (
	id         TEXT PRIMARY KEY,
	service    TEXT NOT NULL,
	build      TEXT NOT NULL DEFAULT '',
	status     TEXT NOT NULL,
	step       INTEGER NOT NULL DEFAULT 0,
	traffic    REAL NOT NULL DEFAULT 0,
	reason     TEXT NOT NULL DEFAULT '',
	started_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	ended_at   INTEGER,
	state      TEXT,
	revision   INTEGER NOT NULL
);
CREATE INDEX releases_service_started ON releases (service, started_at);

CREATE TABLE policies (
	service    TEXT PRIMARY KEY,
	spec       TEXT NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL,
	revision   INTEGER NOT NULL
);
