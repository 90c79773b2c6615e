"""The double-entry ledger: which postings each state change writes, and their verification."""
