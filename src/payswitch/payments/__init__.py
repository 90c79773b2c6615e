"""Payment domain: money, cards, commands, the lifecycle state machine and its typed errors. No I/O."""
