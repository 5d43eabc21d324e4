-- v4: what each replica's data plane judged, published every second so that
-- the release controller, on one replica, judges every replica's traffic,
-- and the first events of users in a release, so the controller counts a
-- user once across replicas and after a failover.
CREATE TABLE analysis_bins (
	service  text NOT NULL,
	bin_end  bigint NOT NULL, -- Unix seconds
	replica  text NOT NULL,
	build    text NOT NULL,
	requests bigint NOT NULL,
	errors   bigint NOT NULL,
	latency  bytea NOT NULL,
	PRIMARY KEY (service, bin_end, replica, build)
);

CREATE TABLE analysis_marks (
	service text NOT NULL,
	replica text NOT NULL,
	through bigint NOT NULL, -- Unix seconds
	at      timestamptz NOT NULL,
	users   bytea, -- the canary's distinct users on the replica (HyperLogLog)
	harmed  bytea, -- … and those who saw an error
	PRIMARY KEY (service, replica)
);

CREATE TABLE analysis_events (
	id         bigserial PRIMARY KEY,
	release_id text NOT NULL,
	replica    text NOT NULL,
	events     bytea NOT NULL,
	created_at timestamptz NOT NULL
);
CREATE INDEX analysis_events_release ON analysis_events (release_id, id);
