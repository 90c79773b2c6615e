"""The `payswitch` command line: one module per command group."""
