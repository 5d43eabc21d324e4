-- v1: release state, builds, endpoints, the event log, release records and
-- policy overrides.
CREATE TABLE services (
	name          text PRIMARY KEY,
	canary        text NOT NULL DEFAULT '',
	traffic       double precision NOT NULL DEFAULT 0,
	window_offset integer NOT NULL DEFAULT 0,
	used_windows  jsonb NOT NULL DEFAULT '[]',
	paused        boolean NOT NULL DEFAULT false,
	updated_at    timestamptz NOT NULL,
	revision      bigint NOT NULL
);

CREATE TABLE builds (
	service       text NOT NULL REFERENCES services (name) ON DELETE CASCADE,
	id            text NOT NULL,
	version       text NOT NULL DEFAULT '',
	labels        jsonb NOT NULL DEFAULT '{}',
	changelog     text NOT NULL DEFAULT '',
	state         text NOT NULL CHECK (state IN ('deployed', 'canary', 'stable', 'deleted')),
	registered_by text NOT NULL DEFAULT '',
	registered_at timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL,
	revision      bigint NOT NULL,
	PRIMARY KEY (service, id)
);
-- At most one stable and one canary build per service, whatever the caller does.
CREATE UNIQUE INDEX builds_one_stable ON builds (service) WHERE state = 'stable';
CREATE UNIQUE INDEX builds_one_canary ON builds (service) WHERE state = 'canary';

CREATE TABLE endpoints (
	service        text NOT NULL,
	build          text NOT NULL,
	addr           text NOT NULL,
	last_heartbeat timestamptz NOT NULL,
	ttl_ms         bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (service, build, addr),
	FOREIGN KEY (service, build) REFERENCES builds (service, id) ON DELETE CASCADE
);

-- Event IDs are assigned under a transaction-scoped advisory lock, so they
-- grow in commit order and readers paging by id never skip one.
CREATE TABLE events (
	id       bigserial PRIMARY KEY,
	time     timestamptz NOT NULL,
	service  text NOT NULL DEFAULT '',
	type     text NOT NULL,
	severity text NOT NULL DEFAULT '',
	actor    text NOT NULL DEFAULT '',
	build    text NOT NULL DEFAULT '',
	reason   text NOT NULL DEFAULT '',
	before   json,
	after    json,
	details  jsonb
);
CREATE INDEX events_service_id ON events (service, id);
CREATE INDEX events_time ON events (time);

CREATE TABLE releases (
	id         text PRIMARY KEY,
	service    text NOT NULL,
	build      text NOT NULL DEFAULT '',
	status     text NOT NULL,
	step       integer NOT NULL DEFAULT 0,
	traffic    double precision NOT NULL DEFAULT 0,
	reason     text NOT NULL DEFAULT '',
	started_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	ended_at   timestamptz,
	state      json,
	revision   bigint NOT NULL
);
CREATE INDEX releases_service_started ON releases (service, started_at);

CREATE TABLE policies (
	service    text PRIMARY KEY,
	spec       json NOT NULL,
	updated_by text NOT NULL DEFAULT '',
	updated_at timestamptz NOT NULL,
	revision   bigint NOT NULL
);
