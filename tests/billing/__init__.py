"""Tests of credits, plans and Stripe billing."""
