"""The card vault: card numbers kept sealed, found by fingerprint, named elsewhere by token."""
