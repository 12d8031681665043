"""Helpers that run the real gateway for tests."""
