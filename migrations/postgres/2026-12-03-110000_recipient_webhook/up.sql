-- Signed webhooks (Standard Webhooks 1.0, issue 12): a recipient's endpoint and signing secret,
-- and the URL the engine disabled after a 410 Gone (counts only while it is still their URL).
ALTER TABLE recipients ADD COLUMN webhook_url TEXT;
ALTER TABLE recipients ADD COLUMN webhook_secret TEXT;
ALTER TABLE recipients ADD COLUMN webhook_disabled_url TEXT;
ALTER TABLE recipients ADD COLUMN webhook_disabled_reason TEXT;
