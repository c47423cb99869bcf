-- Alerts raised at most once a period (issue 13: `deliveries.dead_letters`, at most once an
-- hour). Identical on both engines.
--
-- One row per alert: when it was last raised. A process raises the alert only when it moves
-- `raised_at` forward itself: the row is inserted (PRIMARY KEY: of two processes one wins) or
-- updated from the value it read when that is a period old (a compare-and-set), so of several
-- processes checking in the same hour exactly one raises it.
CREATE TABLE alert_throttles (
    alert     TEXT PRIMARY KEY NOT NULL,
    raised_at TIMESTAMP NOT NULL
);

-- The dead-letter check: deliveries that went `dead` (their last update) within the hour.
CREATE INDEX deliveries_dead ON deliveries (updated_at) WHERE status = 'dead';
