DROP TABLE routing_rule_versions;
DROP TABLE topic_subscriptions;
DROP TABLE topics;
