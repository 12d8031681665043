"""Exact money conversions at the edges."""

from __future__ import annotations

import pytest

from daylite.money import MoneyFormatError, format_usd, usd_to_pico


@pytest.mark.parametrize(
    ("text", "pico"),
    [
        ("0.30", 300_000_000_000),
        ("1", 10**12),
        ("0.000000000001", 1),
        (0.3, 3 * 10**11),
    ],
)
def test_usd_to_pico_is_exact(text: object, pico: int) -> None:
    assert usd_to_pico(text) == pico


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", "0.0000000000001", True])
def test_usd_to_pico_refuses_what_it_cannot_hold(bad: object) -> None:
    with pytest.raises(MoneyFormatError):
        usd_to_pico(bad)


@pytest.mark.parametrize(
    ("pico", "text"),
    [
        (0, "0"),
        (427_100_000, "0.0004271"),
        (10**11, "0.1"),
        (40_000, "0.00000004"),
        (5 * 10**12, "5"),
        (-(10**11), "-0.1"),
    ],
)
def test_format_usd_is_plain_decimal(pico: int, text: str) -> None:
    assert format_usd(pico) == text
