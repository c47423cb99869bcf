DROP TABLE service_keys;
DROP TABLE push_subscriptions;
