-- Telegram answered "chat not found" or "bot was blocked by the user" for this chat id: the
-- channel skips the recipient until their chat id changes (the mark names the chat it is about).
ALTER TABLE recipients ADD COLUMN telegram_unreachable_chat_id TEXT;
ALTER TABLE recipients ADD COLUMN telegram_unreachable_reason TEXT;
