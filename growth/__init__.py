"""Growth inside WeChat's rules: invite attribution and pre-live reminders (docs/growth.md)."""
