"""Typed domain errors. The server edge maps each class to a gRPC status in one table."""


class PaymentError(Exception):
    """Base of every refusal the switch explains to its caller; `reason` is machine-readable."""

    reason = "payment_error"

    def __init__(self, message: str, **metadata: str):
        super().__init__(message)
        self.metadata = metadata


class InvalidRequest(PaymentError):
    """One or more fields are missing or malformed; `violations` maps field path to description."""

    reason = "invalid_argument"

    def __init__(self, violations: dict[str, str]):
        self.violations = violations
        super().__init__("; ".join(f"{field}: {text}" for field, text in violations.items()))


class PaymentNotFound(PaymentError):
    reason = "payment_not_found"

    def __init__(self, payment_id: str):
        super().__init__(f"no payment {payment_id[:64]!r} for this merchant", payment_id=payment_id[:64])


class IllegalTransition(PaymentError):
    reason = "illegal_transition"

    def __init__(self, operation: str, status: str):
        super().__init__(f"cannot {operation.lower()} a payment that is {status}", status=status,
                         operation=operation)


class OperationPending(PaymentError):
    reason = "operation_pending"

    def __init__(self, operation_id: str):
        super().__init__(f"operation {operation_id} on this payment has no known outcome yet",
                         operation_id=operation_id)


class CurrencyMismatch(PaymentError):
    reason = "currency_mismatch"

    def __init__(self, expected: str, got: str):
        super().__init__(f"amount currency {got} differs from the payment's {expected}", expected=expected)


class AmountExceeded(PaymentError):
    def __init__(self, reason: str, available_minor: int):
        self.reason = reason
        super().__init__(f"amount exceeds the {available_minor} minor units available",
                         available_minor=str(available_minor))


class TokenNotFound(PaymentError):
    """No vaulted card with that token for this merchant (another merchant's token included)."""

    reason = "token_not_found"

    def __init__(self, token: str):
        super().__init__(f"no card with token {token[:64]!r} for this merchant", token=token[:64])


class VaultNotConfigured(PaymentError):
    """The switch runs without a master key, so it keeps no cards: Tokenize and token payments are off."""

    reason = "vault_not_configured"

    def __init__(self):
        super().__init__("this switch keeps no cards (no master key is configured); send the card itself")


class NoRoute(PaymentError):
    """No routing rule matches the payment and the merchant has no default channel."""

    reason = "no_route"

    def __init__(self, routing_version: str):
        super().__init__(f"no routing rule of version {routing_version!r} matches this payment and the merchant "
                         "has no default channel", routing_version=routing_version)


class DeadlineTooShort(PaymentError):
    """The caller's deadline leaves too little time to call a channel and record the outcome, so
    nothing is started rather than leaving the outcome unknown."""

    reason = "deadline_too_short"

    def __init__(self, remaining_ms: int, needed_ms: int):
        super().__init__(f"the call's deadline leaves {remaining_ms} ms; at least {needed_ms} ms are needed to "
                         "reach a channel and record the outcome", remaining_ms=str(remaining_ms),
                         needed_ms=str(needed_ms))


class ChannelBusy(PaymentError):
    """Every slot of the channel stayed taken for as long as the call could wait: the channel was not
    called, nothing is kept, and the same request may be sent again with the same key."""

    reason = "channel_busy"

    def __init__(self, channel: str):
        super().__init__(f"channel {channel} has all its calls in flight; not sent, retry with the same key",
                         channel=channel)


class IdempotencyKeyReused(PaymentError):
    reason = "idempotency_key_reused"

    def __init__(self):
        super().__init__("this idempotency key was already used with a different request")


class RequestInProgress(PaymentError):
    reason = "request_in_progress"

    def __init__(self):
        super().__init__("a request with this idempotency key is still in progress; retry with the same key")


class StoreUnavailable(PaymentError):
    reason = "store_unavailable"

    def __init__(self, detail: str = "the payment store is unavailable"):
        super().__init__(detail)


class ShuttingDown(PaymentError):
    reason = "shutting_down"

    def __init__(self):
        super().__init__("the switch is shutting down; retry with the same key")
