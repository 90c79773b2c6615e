"""Authorizations by vault token: each token is opened into the card it names before routing, so the
rest of the flow sees a card like any other, while the payment records the token, never the number."""

import dataclasses
from collections.abc import Sequence

from ..payments.cards import CardDetails
from ..payments.commands import AuthorizeCommand
from ..payments.errors import PaymentError, TokenNotFound, VaultNotConfigured
from ..vault.card_vault import CardVault


async def open_tokens(vault: CardVault | None, merchant_id: str,
                      commands: Sequence[AuthorizeCommand]) -> list[AuthorizeCommand | PaymentError]:
    """Each command, with `card` filled from the vault where it names a token (its CVV from the
    request), or the refusal for that command alone."""
    tokens = [command.card_token.token for command in commands if command.card_token is not None]
    if not tokens:
        return list(commands)
    cards = {} if vault is None else await vault.reveal(merchant_id, tokens)
    opened: list[AuthorizeCommand | PaymentError] = []
    for command in commands:
        reference = command.card_token
        if reference is None:
            opened.append(command)
        elif vault is None:
            opened.append(VaultNotConfigured())
        elif reference.token not in cards:
            opened.append(TokenNotFound(reference.token))
        else:
            card = cards[reference.token]
            opened.append(dataclasses.replace(command, card=CardDetails(
                number=card.number, exp_month=card.exp_month, exp_year=card.exp_year, cvv=reference.cvv,
                holder_name="")))
    return opened
