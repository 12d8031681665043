"""Token counts, prices and the ledger that records every request."""
