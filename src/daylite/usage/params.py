"""Query-string parameters of the usage and request-list endpoints, checked strictly.

Every mistake is a 400 that names the parameter: a typo in a filter must never
quietly widen an answer that someone will put on an invoice.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime

from starlette.datastructures import QueryParams

from daylite.errors import InvalidRequestError
from daylite.timefmt import us_from_datetime
from daylite.usage.spans import DAY_US, HOUR_US

GRANULARITIES = {"day": DAY_US, "hour": HOUR_US}
FORMATS = ("json", "csv")
_MAX_ID = 200
# A '+' in a query string arrives as a space; put it back in a UTC offset.
_SPACED_OFFSET = re.compile(r"^(.*T\S*\d) (\d{2}(?::?\d{2})?)$")


def single_values(query: QueryParams, allowed: Collection[str]) -> dict[str, str]:
    """Each parameter once, and only known ones."""
    values: dict[str, str] = {}
    for name, value in query.multi_items():
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise InvalidRequestError(
                f"Unknown parameter {name!r}; this endpoint takes: {known}.",
                param=name,
            )
        if name in values:
            raise InvalidRequestError(
                f"Parameter {name!r} is given more than once; give it once.",
                param=name,
            )
        values[name] = value
    return values


def parse_instant(name: str, text: str) -> int:
    """An ISO 8601 date or date-time as epoch microseconds; UTC unless it says."""
    value = _SPACED_OFFSET.sub(r"\1+\2", text.strip())
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(
            f"{name!r} must be an ISO 8601 date such as 2026-12-01 or a date-time "
            f"such as 2026-12-01T10:00:00Z; got {text!r}.",
            param=name,
        ) from None
    return us_from_datetime(moment)


def parse_range(values: dict[str, str]) -> tuple[int | None, int | None]:
    start = parse_instant("start", values["start"]) if "start" in values else None
    end = parse_instant("end", values["end"]) if "end" in values else None
    if start is not None and end is not None and start >= end:
        raise InvalidRequestError(
            f"'end' ({values['end']}) must be later than 'start' ({values['start']}); "
            "end is exclusive.",
            param="end",
        )
    return start, end


def parse_id(name: str, text: str | None) -> str | None:
    """A customer, feature or model id to filter on; any id that could exist."""
    if text is None:
        return None
    if not text or len(text) > _MAX_ID or not text.isprintable():
        raise InvalidRequestError(
            f"{name!r} must be 1 to {_MAX_ID} printable characters; got {text!r}.",
            param=name,
        )
    return text


def parse_choice(name: str, text: str | None, choices: Collection[str]) -> str | None:
    if text is None or text in choices:
        return text
    raise InvalidRequestError(
        f"{name!r} must be one of {', '.join(choices)}; got {text!r}.", param=name
    )


def parse_limit(text: str | None, *, default: int, most: int) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= most:
        raise InvalidRequestError(
            f"'limit' must be a whole number from 1 to {most}; got {text!r}.",
            param="limit",
        )
    return int(text)
