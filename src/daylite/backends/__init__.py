"""Backends: where a model's requests are sent."""
