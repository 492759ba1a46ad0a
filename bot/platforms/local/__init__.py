"""The built-in local chat: a browser page at /chat and a JSON API, for demos, tests and trials."""
