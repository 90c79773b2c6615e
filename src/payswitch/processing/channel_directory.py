"""The configured channels by name: each one's client (guarded by its breaker and concurrency limit)
and its own call timeout. Which channel serves a payment is the router's business."""

from dataclasses import dataclass

from ..channels.base import ChannelClient


@dataclass(frozen=True)
class ChannelBinding:
    client: ChannelClient
    timeout_s: float


class ChannelDirectory:
    def __init__(self, bindings: dict[str, ChannelBinding]):
        self._bindings = bindings

    def named(self, name: str) -> ChannelBinding:
        return self._bindings[name]

    def names(self) -> list[str]:
        return list(self._bindings)

    def circuit_open(self, name: str) -> bool:
        return self._bindings[name].client.breaker.state == "open"

    def health(self, name: str):
        """The channel's breaker state and recent statistics (a GuardedChannel's snapshot)."""
        return self._bindings[name].client.health()

    async def close(self) -> None:
        for binding in self._bindings.values():
            await binding.client.close()
