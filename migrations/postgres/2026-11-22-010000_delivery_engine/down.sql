ALTER TABLE recipients DROP COLUMN telegram_unreachable_reason;
ALTER TABLE recipients DROP COLUMN telegram_unreachable_chat_id;
