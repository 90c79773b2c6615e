"""The caller's deadline, shared out: each channel call gets what is left of it minus the time kept
back to record the outcome, so the switch answers before the caller gives up instead of after."""

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..payments.errors import DeadlineTooShort

#: Kept back from every channel call to commit the outcome and send the answer.
COMMIT_RESERVE_S = 0.05
#: The least a channel call is given; with less, the call is not started (or not failed over).
MIN_CHANNEL_S = 0.02


@dataclass(frozen=True, slots=True)
class Budget:
    deadline: float | None = None  # on the `monotonic` clock; None: the caller set no deadline
    monotonic: Callable[[], float] = time.monotonic

    @classmethod
    def from_remaining(cls, remaining_s: float | None, monotonic: Callable[[], float] = time.monotonic) -> "Budget":
        return cls(None if remaining_s is None else monotonic() + remaining_s, monotonic)

    def require_room(self) -> None:
        """Raises DeadlineTooShort before anything is written when no channel call could fit."""
        if not self.has_room():
            remaining = self.deadline - self.monotonic()
            raise DeadlineTooShort(max(0, int(remaining * 1000)), int((COMMIT_RESERVE_S + MIN_CHANNEL_S) * 1000))

    def has_room(self) -> bool:
        return self.deadline is None or self.deadline - self.monotonic() >= COMMIT_RESERVE_S + MIN_CHANNEL_S

    def channel_timeout(self, configured_s: float) -> float:
        """The channel's own timeout, cut to what the caller's deadline leaves."""
        if self.deadline is None:
            return configured_s
        return max(MIN_CHANNEL_S, min(configured_s, self.deadline - self.monotonic() - COMMIT_RESERVE_S))


UNBOUNDED = Budget()
