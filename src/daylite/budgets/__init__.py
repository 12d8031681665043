"""Per-customer monthly budgets: reservations, caps, alerts and their webhooks."""
