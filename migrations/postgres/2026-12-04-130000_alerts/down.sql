DROP INDEX deliveries_dead;
DROP TABLE alert_throttles;
