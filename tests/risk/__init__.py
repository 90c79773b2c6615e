"""Tests of payswitch.risk; a package because tests/hotpath holds a test_risk_rules.py too."""
