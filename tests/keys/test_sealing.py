"""Sealing secrets under a master key: a blob opens only under its master key, for its own row, unaltered."""

import logging
import os

import pytest

from payswitch.keys.sealing import MasterKey, MasterKeyError, Sealer, SealingError, master_key_id
from payswitch.keys.store import secret_binding

SECRET = bytes(range(32))
ROW_A = secret_binding("m_alpha", "k1")
ROW_B = secret_binding("m_beta", "k1")


@pytest.fixture
def master():
    return MasterKey.generate("mk1")


def test_a_sealed_secret_opens_for_its_row_and_names_its_master_key(master):
    blob = master.seal(SECRET, ROW_A)
    assert master.open(blob, ROW_A) == SECRET
    assert master_key_id(blob) == "mk1"
    assert SECRET not in blob
    assert master.seal(SECRET, ROW_A) != blob  # a fresh nonce each time
    assert Sealer(master).open(blob, ROW_A) == SECRET


def test_a_blob_does_not_open_for_another_row(master):
    blob_a, blob_b = master.seal(SECRET, ROW_A), master.seal(b"b" * 32, ROW_B)
    for blob, row in ((blob_a, ROW_B), (blob_b, ROW_A), (blob_a, secret_binding("m_alpha", "k2")), (blob_a, b"")):
        with pytest.raises(SealingError, match="does not open"):
            master.open(blob, row)


def test_a_change_to_any_byte_of_the_blob_is_detected(master):
    blob = master.seal(SECRET, ROW_A)
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(SealingError):
            master.open(bytes(tampered), ROW_A)
    for length in (0, 1, 2, len(blob) - 17):
        with pytest.raises(SealingError):
            master.open(blob[:length], ROW_A)


def test_another_master_key_does_not_open_a_blob(master):
    blob = master.seal(SECRET, ROW_A)
    with pytest.raises(SealingError, match="does not open"):
        MasterKey.generate("mk1").open(blob, ROW_A)  # same id, other bytes
    with pytest.raises(SealingError, match="'mk1', not 'mk2'"):
        MasterKey.generate("mk2").open(blob, ROW_A)
    with pytest.raises(SealingError, match="not configured"):
        Sealer(MasterKey.generate("mk2")).open(blob, ROW_A)


def test_master_key_rotation_opens_old_blobs_and_reseals_them_under_the_new_key(master):
    old_blob = master.seal(SECRET, ROW_A)
    new = MasterKey.generate("mk2")
    sealer = Sealer(new, retired=[master])
    assert sealer.key_ids == {"mk1", "mk2"}
    assert sealer.open(old_blob, ROW_A) == SECRET
    assert sealer.needs_reseal(old_blob)
    resealed = sealer.reseal(old_blob, ROW_A)
    assert master_key_id(resealed) == "mk2" and not sealer.needs_reseal(resealed)
    assert Sealer(new).open(resealed, ROW_A) == SECRET
    assert sealer.reseal(resealed, ROW_A) is resealed
    with pytest.raises(SealingError):
        sealer.reseal(old_blob, ROW_B)  # re-sealing checks the binding too
    with pytest.raises(MasterKeyError, match="twice"):
        Sealer(new, retired=[MasterKey.generate("mk2")])


def test_a_master_key_never_shows_itself():
    key = MasterKey.from_hex("mk1", "ab" * 32)
    assert "ab" * 4 not in repr(key) and "***" in repr(key)
    assert "ab" * 4 not in repr(Sealer(key))


@pytest.mark.parametrize("key_id, text, message", [
    ("mk1", "ab" * 31, "64 hex digits"),
    ("mk1", "zz" * 32, "64 hex digits"),
    ("mk1", "ab" * 33, "64 hex digits"),
    ("bad id", "ab" * 32, "master-key id"),
    ("", "ab" * 32, "master-key id"),
])
def test_a_malformed_master_key_is_refused_without_echoing_it(key_id, text, message):
    with pytest.raises(MasterKeyError, match=message) as caught:
        MasterKey.from_hex(key_id, text)
    assert text not in str(caught.value)


def test_the_master_key_comes_from_the_environment_or_a_file(tmp_path, caplog):
    hex_key = os.urandom(32).hex()
    assert MasterKey.from_env({}) is None
    key = MasterKey.from_env({"PAYSWITCH_MASTER_KEY": hex_key})
    assert key.key_id == "mk1"
    named = MasterKey.from_env({"PAYSWITCH_MASTER_KEY": hex_key, "PAYSWITCH_MASTER_KEY_ID": "2025-q1"})
    assert named.key_id == "2025-q1"
    blob = key.seal(SECRET, ROW_A)
    assert MasterKey.from_hex("mk1", hex_key).open(blob, ROW_A) == SECRET

    hex_file = tmp_path / "master.hex"
    hex_file.write_text(hex_key + "\n")
    hex_file.chmod(0o600)
    raw_file = tmp_path / "master.bin"
    raw_file.write_bytes(bytes.fromhex(hex_key))
    raw_file.chmod(0o600)
    with caplog.at_level(logging.DEBUG):
        for path in (hex_file, raw_file):
            from_file = MasterKey.from_env({"PAYSWITCH_MASTER_KEY_FILE": str(path)})
            assert from_file.open(blob, ROW_A) == SECRET
    assert not caplog.records
    hex_file.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        MasterKey.from_file("mk1", hex_file)
    assert "readable by group or others" in caplog.text and hex_key not in caplog.text

    with pytest.raises(MasterKeyError, match="only one"):
        MasterKey.from_env({"PAYSWITCH_MASTER_KEY": hex_key, "PAYSWITCH_MASTER_KEY_FILE": str(hex_file)})
    with pytest.raises(MasterKeyError, match="PAYSWITCH_MASTER_KEY must hold"):
        MasterKey.from_env({"PAYSWITCH_MASTER_KEY": "not hex"})
    with pytest.raises(MasterKeyError, match="PAYSWITCH_MASTER_KEY_ID"):
        MasterKey.from_env({"PAYSWITCH_MASTER_KEY": hex_key, "PAYSWITCH_MASTER_KEY_ID": "no spaces"})
    with pytest.raises(MasterKeyError, match="No such file"):
        MasterKey.from_env({"PAYSWITCH_MASTER_KEY_FILE": str(tmp_path / "missing")})
    (tmp_path / "short").write_bytes(b"\x00" * 31)
    with pytest.raises(MasterKeyError, match="32 raw bytes or 64 hex"):
        MasterKey.from_file("mk1", tmp_path / "short")
