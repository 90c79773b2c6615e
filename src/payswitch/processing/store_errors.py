"""What a caller is told when the store fails: one translation for every place that touches it."""

import logging

from ..payments.errors import PaymentError, RequestInProgress, ShuttingDown, StoreUnavailable
from ..store.base import IdempotencyConflict, StaleWrite, StoreClosed, StoreError

log = logging.getLogger(__name__)


def as_payment_error(error: StoreError) -> PaymentError | IdempotencyConflict:
    """IdempotencyConflict stays as it is: the idempotency gate replays the stored answer for it."""
    if isinstance(error, IdempotencyConflict):
        return error
    if isinstance(error, StaleWrite):
        return RequestInProgress()
    if isinstance(error, StoreClosed):
        return ShuttingDown()
    log.error("store failed: %s", error)
    return StoreUnavailable()


async def checked(awaitable):
    """The awaitable's result, with a store failure translated."""
    try:
        return await awaitable
    except StoreError as error:
        raise as_payment_error(error) from None
