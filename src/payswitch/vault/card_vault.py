"""The card vault: card numbers sealed with AES-256-GCM under rotating data keys.

A card number is stored only here, sealed under the primary data key with its row's id and merchant as
associated data, so a blob copied onto another row does not open. The data keys and the fingerprint
key are themselves sealed under the master key, which the database never holds. A card is found again
by its fingerprint, HMAC-SHA256 under the vault's index key, so the same number gets the same token
without decrypting anything, and the fingerprint cannot be reversed without that key (a plain hash
of a 16-digit number could be). CVVs never reach the vault.

Rotation (`rotate`) makes a new primary data key, re-seals every entry under it in batches while the
switch serves (entries under the old key still open meanwhile), then deletes the old key material.
"""

import dataclasses
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..keys.sealing import MasterKey, Sealer
from ..payments.cards import CardDetails, Sensitive
from ..payments.ids import IdSource
from ..store.base import Change, PaymentStore, StoreError, VaultEntry, VaultKeyRecord

log = logging.getLogger(__name__)

DATA_KEY, INDEX_KEY = "data", "index"
PRIMARY, RETIRED = "primary", "retired"
RESEAL_BATCH = 500


@dataclass(frozen=True, slots=True)
class VaultedCard:
    """A card number opened from the vault, for one channel call; its number stays wrapped."""

    entry_id: str
    number: Sensitive
    exp_month: int
    exp_year: int
    card_bin: str
    last4: str
    scheme: str


@dataclass(frozen=True, slots=True)
class RotationReport:
    primary_key_id: str
    resealed: int
    deleted_key_ids: tuple[str, ...]


def _card_binding(entry_id: str, merchant_id: str) -> bytes:
    return f"payswitch vault card\x00{entry_id}\x00{merchant_id}".encode()


def _key_binding(key_id: str, purpose: str) -> bytes:
    return f"payswitch vault key\x00{key_id}\x00{purpose}".encode()


class CardVault:
    def __init__(self, store: PaymentStore, master_key: MasterKey, *, clock_us: Callable[[], int],
                 new_token: Callable[[], str] | None = None):
        self._store = store
        self._master = master_key
        self._clock_us = clock_us
        self._new_token = new_token or IdSource().card_token
        self._sealer: Sealer | None = None
        self._index_key: bytes | None = None
        self._retired_ids: list[str] = []

    async def open(self) -> None:
        """Loads the vault's keys, making the first ones when the vault is new."""
        records = await self._store.vault_keys()
        if not records:
            now = self._clock_us()
            records = [self._new_key_record(INDEX_KEY, now), self._new_key_record(DATA_KEY, now)]
            await self._store.add_vault_keys(records, retire_data_keys=False)
        self._load(records)

    @property
    def primary_key_id(self) -> str:
        return self._sealer.primary.key_id

    def fingerprint(self, number: str) -> bytes:
        return hmac.new(self._index_key, number.encode("ascii"), hashlib.sha256).digest()

    def seal(self, entry_id: str, merchant_id: str, card: CardDetails) -> VaultEntry:
        """The entry to commit (in the same Change as the payment that brought the card)."""
        number = card.number.reveal()
        return VaultEntry(
            entry_id=entry_id, merchant_id=merchant_id, fingerprint=self.fingerprint(number),
            key_id=self._sealer.primary.key_id,
            sealed_number=self._sealer.seal(number.encode("ascii"), _card_binding(entry_id, merchant_id)),
            card_bin=number[:6], card_last4=number[-4:], exp_month=card.exp_month, exp_year=card.exp_year,
            scheme=card.scheme, created_at_us=self._clock_us())

    async def tokenize(self, merchant_id: str, card: CardDetails) -> VaultEntry:
        """The merchant's token for the card: the existing one for a number seen before (taking the
        expiry given now, as a reissued card keeps its number), else a new one."""
        fingerprint = self.fingerprint(card.number.reveal())
        existing = await self._store.find_vault_token(merchant_id, fingerprint)
        if existing is not None:
            if (existing.exp_month, existing.exp_year) != (card.exp_month, card.exp_year):
                await self._store.update_vault_expiry(existing.entry_id, card.exp_month, card.exp_year)
                existing = dataclasses.replace(existing, exp_month=card.exp_month, exp_year=card.exp_year)
            return existing
        entry = self.seal(self._new_token(), merchant_id, card)
        try:
            await self._store.apply(Change(vault_entry=entry))
        except StoreError:
            existing = await self._store.find_vault_token(merchant_id, fingerprint)
            if existing is None:
                raise
            return existing  # a concurrent Tokenize of the same card won
        log.info("vault: token %s created for merchant %s", entry.entry_id, merchant_id)
        return entry

    async def reveal(self, merchant_id: str, entry_ids: Sequence[str]) -> dict[str, VaultedCard]:
        """The merchant's cards among `entry_ids`; another merchant's token is as absent as an unknown one."""
        entries = await self._store.get_vault_entries(entry_ids)
        cards = {}
        for entry_id, entry in entries.items():
            if entry.merchant_id != merchant_id:
                continue
            number = self._sealer.open(entry.sealed_number, _card_binding(entry.entry_id, entry.merchant_id))
            cards[entry_id] = VaultedCard(entry_id, Sensitive(number.decode("ascii")), entry.exp_month,
                                          entry.exp_year, entry.card_bin, entry.card_last4, entry.scheme)
        return cards

    async def rotate(self) -> RotationReport:
        """A new primary data key; every entry re-sealed under it; the old keys' material deleted."""
        record = self._new_key_record(DATA_KEY, self._clock_us())
        await self._store.add_vault_keys([record], retire_data_keys=True)
        self._load(await self._store.vault_keys())
        retired = list(self._retired_ids)
        resealed = 0
        while batch := await self._store.vault_entries_sealed_with(retired, RESEAL_BATCH):
            await self._store.reseal_vault_entries([
                (entry, self._sealer.primary.key_id,
                 self._sealer.reseal(entry.sealed_number, _card_binding(entry.entry_id, entry.merchant_id)))
                for entry in batch])
            resealed += len(batch)
        deleted = await self._store.delete_unused_vault_keys(retired)
        self._load(await self._store.vault_keys())
        log.info("vault: data key %s is primary; %d entries re-sealed; keys %s deleted", record.key_id, resealed,
                 ", ".join(deleted) or "none")
        return RotationReport(record.key_id, resealed, tuple(deleted))

    def _new_key_record(self, purpose: str, now: int) -> VaultKeyRecord:
        key_id = f"{purpose[0]}k_{secrets.token_hex(6)}"
        return VaultKeyRecord(key_id, purpose, PRIMARY, self._master.seal(secrets.token_bytes(32),
                                                                          _key_binding(key_id, purpose)), now)

    def _load(self, records: Sequence[VaultKeyRecord]) -> None:
        """Opens the key records: the index key, the primary data key and the retired ones."""
        opened = {record.key_id: self._master.open(record.sealed_key, _key_binding(record.key_id, record.purpose))
                  for record in records}
        index = [record.key_id for record in records if record.purpose == INDEX_KEY]
        primary = [record.key_id for record in records if record.purpose == DATA_KEY and record.status == PRIMARY]
        if len(index) != 1 or len(primary) != 1:
            raise StoreError(f"the vault needs one index key and one primary data key, found {len(index)} "
                             f"and {len(primary)}")
        self._retired_ids = [record.key_id for record in records
                             if record.purpose == DATA_KEY and record.status == RETIRED]
        self._index_key = opened[index[0]]
        self._sealer = Sealer(MasterKey(primary[0], opened[primary[0]]),
                              [MasterKey(key_id, opened[key_id]) for key_id in self._retired_ids])
