"""Catalog validation: prices in the documented unit, nothing free by accident."""

from __future__ import annotations

import tomllib

import pytest

from daylite.catalog import build_catalog
from daylite.settings import ConfigError


def _catalog(text: str):  # type: ignore[no-untyped-def]
    return build_catalog(tomllib.loads(text), "test")


def test_custom_model_prices_are_per_million_tokens() -> None:
    """F02: 0.15 / 0.60 per 1M stays 0.15 / 0.60 per 1M."""
    catalog = _catalog(
        '[models."custom-oss"]\ncontext_length = 8192\ninput = 0.15\noutput = 0.60\n'
    )
    price = catalog.models["custom-oss"].price
    assert (price.input, price.output) == (150_000, 600_000)


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ('input = "0.15"', "has no output price"),
        ('input = "0.00015"\noutput = "0.0006"', "outside 0.001..1000"),
        ('input = "15000"\noutput = "60000"', "outside 0.001..1000"),
        ('input = "0.1234567"\noutput = "1"', "more than 6 decimal places"),
        ('input = "-1"\noutput = "1"', "negative"),
    ],
)
def test_bad_prices_stop_the_start(prices: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _catalog(f'[models."m"]\ncontext_length = 8192\n{prices}\n')


def test_route_to_an_undefined_backend_is_refused() -> None:
    with pytest.raises(ConfigError, match="names backend 'nope'"):
        _catalog(
            '[models."m"]\ncontext_length = 10\ninput = 1\noutput = 1\n'
            'routes = [{ backend = "nope" }]\n'
        )
