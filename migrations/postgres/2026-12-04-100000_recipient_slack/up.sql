-- Slack incoming webhooks (issue 12): a recipient's webhook URL (write-only: it is the
-- credential), and the URL Slack refused for good (404/410, no_service, channel_not_found,
-- invalid_token) with what it said (counts only while it is still their URL).
ALTER TABLE recipients ADD COLUMN slack_webhook_url TEXT;
ALTER TABLE recipients ADD COLUMN slack_unreachable_url TEXT;
ALTER TABLE recipients ADD COLUMN slack_unreachable_reason TEXT;
