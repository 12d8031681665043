"""The ``daylite`` command for operators."""
