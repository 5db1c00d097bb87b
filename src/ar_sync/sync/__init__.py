"""The run of one company: fetch -> snapshot -> plan -> execute exactly once -> checkpoint,
and the protocols it drives (connector, ledger, store)."""
