"""payswitch: a high-throughput payment switch."""

__version__ = "0.1.0"
