"""Compiled twins of the hot path (built from ext/payswitch/_speedups); import them only through payswitch.hotpath."""
