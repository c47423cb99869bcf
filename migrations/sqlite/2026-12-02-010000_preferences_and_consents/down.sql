DROP INDEX deliveries_recipient_channel_idx;
DROP TABLE consents;
DROP TABLE recipient_preferences;
