"""Fixtures that start real things: a switch and a simulator channel on loopback, a SQLite file."""

import pytest
from live_switch import LiveSwitch


@pytest.fixture
def live(tmp_path):
    switch = LiveSwitch(tmp_path).start()
    yield switch
    switch.close()

