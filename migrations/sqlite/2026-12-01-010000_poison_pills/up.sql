-- The claim that holds a `sending` delivery (a fencing token, one per claimed batch): recording an
-- outcome or renewing a lease only touches rows still holding the writer's token, so a worker
-- whose lease lapsed cannot write over the worker that took the delivery over.
ALTER TABLE deliveries ADD COLUMN claim_token TEXT;
-- How many times a worker died (or hung) holding the delivery since its last recorded outcome: a
-- lease that lapsed with no outcome. A delivery with one is claimed alone; at 2 it is parked
-- `dead` as a poison pill instead of being handed out again.
ALTER TABLE deliveries ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;

-- One row that `/health/ready` writes to, so a database that has become read-only (or cannot
-- take writes any more) fails readiness even while it still answers reads.
CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY NOT NULL,
    checked_at TIMESTAMP NOT NULL
);
INSERT INTO health_probe (id, checked_at) VALUES (1, CURRENT_TIMESTAMP);
