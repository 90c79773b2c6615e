"""The signing client for services that call the switch."""

from .batch import Batcher, BatchItemError, BatchRefused, BatchStream, batch_item, batch_request
from .errors import ErrorDetails, error_details
from .requests import authorize_request, capture_request, new_idempotency_key, refund_request, void_request
from .signer import RequestSigner
from .switch_client import SwitchClient
from .sync_client import SyncSwitchClient

__all__ = [
    "BatchItemError", "BatchRefused", "BatchStream", "Batcher", "ErrorDetails", "RequestSigner", "SwitchClient",
    "SyncSwitchClient", "authorize_request", "batch_item", "batch_request", "capture_request", "error_details",
    "new_idempotency_key", "refund_request", "void_request",
]
