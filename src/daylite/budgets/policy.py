"""What a budget is (cap, action, alert thresholds) and how API input becomes one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from daylite.errors import InvalidRequestError
from daylite.money import PICO_PER_USD, MoneyFormatError, format_usd, usd_to_pico
from daylite.validation import attribution_id

ACTIONS = ("block", "alert", "clamp")
MAX_CAP_PICO = 1_000_000 * PICO_PER_USD
MAX_THRESHOLDS = 10
_MILLION = 1_000_000
_FIELDS = ("customer_id", "monthly_cap_usd", "action_on_cap", "alert_thresholds")


@dataclass(frozen=True, slots=True, order=True)
class Threshold:
    """A fraction of the cap in (0, 1], held exactly as millionths."""

    millionths: int

    @property
    def text(self) -> str:
        whole, frac = divmod(self.millionths, _MILLION)
        if frac == 0:
            return str(whole)
        return f"{whole}.{frac:06d}".rstrip("0")

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """The threshold a stored decimal string such as ``"0.8"`` names."""
        return cls(int(Decimal(text) * _MILLION))

    def reached(self, spent_pico: int, cap_pico: int) -> bool:
        """Whether ``spent_pico`` is at or past this fraction of ``cap_pico``."""
        return spent_pico * _MILLION >= cap_pico * self.millionths


@dataclass(frozen=True, slots=True)
class Budget:
    account_id: str
    customer_id: str
    cap_pico: int
    action: str
    thresholds: tuple[Threshold, ...]
    created_at: int
    updated_at: int

    def crossed(self, spent_pico: int) -> tuple[Threshold, ...]:
        """Thresholds that ``spent_pico`` has reached; nothing until spend begins."""
        if spent_pico <= 0:
            return ()
        return tuple(t for t in self.thresholds if t.reached(spent_pico, self.cap_pico))

    @property
    def cap_usd(self) -> str:
        return format_usd(self.cap_pico)


def _bad(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def customer_id_of(value: Any, param: str = "customer_id") -> str:
    """A customer id by the same rule as the X-Daylite-Customer header."""
    if not isinstance(value, str):
        raise _bad(f"'{param}' is required: a string such as \"customer_123\".", param)
    try:
        checked = attribution_id({param: value}, param)
    except InvalidRequestError:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise _bad(
            f"'{param}' {shown!r} is not valid: use 1 to 128 characters from "
            "letters, digits and . _ : @ + = / -, starting with a letter or digit "
            "(the same rule as the X-Daylite-Customer header).",
            param,
        ) from None
    assert checked is not None
    return checked


def _cap(value: Any) -> int:
    param = "monthly_cap_usd"
    if (
        value is None
        or isinstance(value, bool)
        or not isinstance(value, (int, float, str))
    ):
        raise _bad(
            f"'{param}' is required: a number of US dollars such as 500 or \"0.25\".",
            param,
        )
    try:
        cap = usd_to_pico(value)
    except MoneyFormatError as exc:
        raise _bad(f"'{param}' is not a usable amount: {exc}.", param) from None
    if cap < 0:
        raise _bad(f"'{param}' must not be negative; got {value!r}.", param)
    if cap > MAX_CAP_PICO:
        raise _bad(f"'{param}' must be at most 1000000; got {value!r}.", param)
    return cap


def _action(value: Any) -> str:
    if value is None:
        return "block"
    if value not in ACTIONS:
        raise _bad(
            f"'action_on_cap' is {value!r}; expected one of block, alert, clamp.",
            "action_on_cap",
        )
    assert isinstance(value, str)
    return value


def _threshold(value: Any) -> Threshold:
    param = "alert_thresholds"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(f"'{param}' holds {value!r}, which is not a number.", param)
    try:
        fraction = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        raise _bad(
            f"'{param}' holds {value!r}, which is not a number.", param
        ) from None
    if not fraction.is_finite() or not 0 < fraction <= 1:
        raise _bad(
            f"'{param}' holds {value!r}; each threshold is a fraction of the cap "
            "greater than 0 and at most 1, such as 0.5 or 0.9.",
            param,
        )
    scaled = fraction * _MILLION
    if scaled != scaled.to_integral_value():
        raise _bad(f"'{param}' holds {value!r}; use at most 6 decimal places.", param)
    return Threshold(int(scaled))


def _thresholds(value: Any) -> tuple[Threshold, ...]:
    param = "alert_thresholds"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad(
            f"'{param}' must be an array of fractions such as [0.5, 0.9].", param
        )
    if len(value) > MAX_THRESHOLDS:
        raise _bad(
            f"'{param}' has {len(value)} entries; at most {MAX_THRESHOLDS} allowed.",
            param,
        )
    thresholds = [_threshold(item) for item in value]
    if len(set(thresholds)) != len(thresholds):
        raise _bad(f"'{param}' repeats a threshold: {value!r}.", param)
    return tuple(sorted(thresholds))


def parse_budget(body: Mapping[str, Any], account_id: str, now_us: int) -> Budget:
    """Validate a ``POST /v1/budgets`` body; errors name the field in ``param``."""
    for key in body:
        if key not in _FIELDS:
            raise _bad(
                f"Unknown field {key!r}; a budget has {', '.join(_FIELDS)}.", key
            )
    return Budget(
        account_id=account_id,
        customer_id=customer_id_of(body.get("customer_id")),
        cap_pico=_cap(body.get("monthly_cap_usd")),
        action=_action(body.get("action_on_cap")),
        thresholds=_thresholds(body.get("alert_thresholds")),
        created_at=now_us,
        updated_at=now_us,
    )
