DROP INDEX deliveries_notification_channel_address_key;
DELETE FROM deliveries d USING deliveries e
    WHERE d.notification_id = e.notification_id AND d.channel = e.channel AND d.id > e.id;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_notification_channel_key UNIQUE (notification_id, channel);
ALTER TABLE deliveries DROP COLUMN address;
