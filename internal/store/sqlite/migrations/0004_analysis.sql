-- v4: what each replica's data plane judged, published every second so that
-- the release controller, on one replica, judges every replica's traffic,
-- and the first events of users in a release, so the controller counts a
-- user once across replicas and after a failover.
CREATE TABLE analysis_bins (
	service  TEXT NOT NULL,
	bin_end  INTEGER NOT NULL, -- Unix seconds
	replica  TEXT NOT NULL,
	build    TEXT NOT NULL,
	requests INTEGER NOT NULL,
	errors   INTEGER NOT NULL,
	latency  BLOB NOT NULL,
	PRIMARY KEY (service, bin_end, replica, build)
);

CREATE TABLE analysis_marks (
	service TEXT NOT NULL,
	replica TEXT NOT NULL,
	through INTEGER NOT NULL, -- Unix seconds
	at      INTEGER NOT NULL,
	users   BLOB, -- the canary's distinct users on the replica (HyperLogLog)
	harmed  BLOB, -- … and those who saw an error
	PRIMARY KEY (service, replica)
);

CREATE TABLE analysis_events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	release_id TEXT NOT NULL,
	replica    TEXT NOT NULL,
	events     BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX analysis_events_release ON analysis_events (release_id, id);
