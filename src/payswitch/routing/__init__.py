"""Routing: which channels a payment tries, read from a versioned TOML file and compiled into tables.

`routing.config` reads and validates the file (every problem named by its line); `routing.table`
compiles it into the hot-path tables and answers per payment, and explains its answers.
"""
