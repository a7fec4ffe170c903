"""Services: what the API, the Slack bot and the command line do with the store (they flush, callers commit)."""
