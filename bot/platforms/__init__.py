"""Platform adapters: local chat, DingTalk, WeCom. They never touch forms or the database."""
