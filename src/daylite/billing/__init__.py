"""Prepaid credits, plans, and buying credits through Stripe Checkout."""
