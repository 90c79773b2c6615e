"""The signing client for services that call the switch."""

from .errors import ErrorDetails, error_details
from .signer import RequestSigner
from .switch_client import SwitchClient
from .sync_client import SyncSwitchClient

__all__ = ["ErrorDetails", "RequestSigner", "SwitchClient", "SyncSwitchClient", "error_details"]
