"""Exact money: integer pico-dollars inside, decimal strings at the edges.

One pico-dollar is 1e-12 USD. Catalog prices are USD per million tokens with at
most six decimals, so a price is an integer number of micro-dollars per million
tokens and ``tokens * price`` is an exact count of pico-dollars: no rounding
ever happens between a backend's token counts and the ledger.
"""

from decimal import Decimal, InvalidOperation

PICO_PER_USD = 10**12
_PICO = Decimal(PICO_PER_USD)
# Pico-dollars must fit a signed 64-bit column: about 9.2 million USD.
_LIMIT = Decimal(2**63 - 1) / _PICO


class MoneyFormatError(ValueError):
    """A money amount that cannot be represented exactly."""


def usd_to_pico(value: object, *, max_decimals: int = 12) -> int:
    """Convert a USD amount (str, int, Decimal or float literal) to pico-dollars.

    Floats are read through ``repr`` so that ``0.3`` from a TOML or JSON file
    means exactly 0.3, which is what the person who typed it meant.
    """
    if isinstance(value, bool):
        raise MoneyFormatError(f"{value!r} is not an amount of money")
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise MoneyFormatError(f"{value!r} is not a decimal number") from None
    if not amount.is_finite():
        raise MoneyFormatError(f"{value!r} is not a finite amount")
    if amount.copy_abs() >= _LIMIT:
        raise MoneyFormatError(f"{value!r} is more than this gateway handles")
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > max_decimals:
        raise MoneyFormatError(f"{value!r} has more than {max_decimals} decimal places")
    return int(amount * _PICO)


def pico_to_decimal(pico: int) -> Decimal:
    """The exact USD value of a pico-dollar count."""
    return Decimal(pico) / _PICO


def format_usd(pico: int) -> str:
    """Render pico-dollars as a plain decimal string without trailing zeros."""
    if pico == 0:
        return "0"
    sign = "-" if pico < 0 else ""
    whole, frac = divmod(abs(pico), PICO_PER_USD)
    if frac == 0:
        return f"{sign}{whole}"
    digits = f"{frac:012d}".rstrip("0")
    return f"{sign}{whole}.{digits}"
