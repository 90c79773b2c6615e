"""Which channel serves a merchant, and the client for a channel by name.

This is the seam routing replaces: today each merchant has one default channel from config.
"""

from dataclasses import dataclass

from ..channels.base import ChannelClient


@dataclass(frozen=True)
class ChannelBinding:
    client: ChannelClient
    timeout_s: float


class ChannelDirectory:
    def __init__(self, bindings: dict[str, ChannelBinding], merchant_channels: dict[str, str]):
        self._bindings = bindings
        self._merchant_channels = merchant_channels

    def for_merchant(self, merchant_id: str) -> tuple[str, ChannelBinding]:
        name = self._merchant_channels[merchant_id]
        return name, self._bindings[name]

    def named(self, name: str) -> ChannelBinding:
        return self._bindings[name]

    async def close(self) -> None:
        for binding in self._bindings.values():
            await binding.client.close()
