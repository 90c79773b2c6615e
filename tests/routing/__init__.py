"""Tests of payswitch.routing; a package because tests/hotpath holds a test_routing_table.py too."""
