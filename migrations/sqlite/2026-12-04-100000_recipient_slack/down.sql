ALTER TABLE recipients DROP COLUMN slack_unreachable_reason;
ALTER TABLE recipients DROP COLUMN slack_unreachable_url;
ALTER TABLE recipients DROP COLUMN slack_webhook_url;
