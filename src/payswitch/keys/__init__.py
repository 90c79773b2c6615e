"""Merchants' signing keys with a lifecycle: issued, listed and revoked through SwitchAdmin.

- `sealing`: AES-256-GCM under a master key; the stored form of every secret (docs/keys.md).
- `store`: the `signing_keys` table in the switch's SQLite file (migration 003).
- `ring`: `KeyRing`, which keeps the Verifier's key table equal to the keys valid now, refreshing
  itself at each validity boundary, after each write and, for writes by other processes, periodically.
"""
