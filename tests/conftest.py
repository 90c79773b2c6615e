"""Fixtures that start real things: a switch and a simulator channel on loopback, a SQLite file."""

import os

import pytest
from hypothesis import settings
from live_switch import LiveSwitch

# `make test` (and so CI) draws the same examples every run, so a red run is the change's doing;
# `make fuzz` draws new ones each time, to look for what those miss.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("PAYSWITCH_HYPOTHESIS", "explore"))


@pytest.fixture
def live(tmp_path):
    switch = LiveSwitch(tmp_path).start()
    yield switch
    switch.close()

