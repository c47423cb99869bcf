-- Where a delivery goes, when its recipient has more than one address on its channel (issue 12).
--
-- `address`: NULL for channels whose address is the recipient's own (email, Telegram chat,
-- in-app); for `web_push`, the push subscription's endpoint: one delivery per subscription,
-- so a notification may hold several `web_push` deliveries, one per endpoint. The unique key
-- becomes (notification, channel, address), NULL counted as one address.
ALTER TABLE deliveries ADD COLUMN address TEXT;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_notification_channel_key;
CREATE UNIQUE INDEX deliveries_notification_channel_address_key
    ON deliveries (notification_id, channel, COALESCE(address, ''));
