"""Durable state: the store interface, its SQLite backend and schema migrations."""
