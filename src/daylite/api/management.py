"""What the management handlers share: bounded JSON bodies and list paging."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from daylite.errors import InvalidRequestError, PayloadTooLargeError
from daylite.validation import parse_payload

MAX_BODY_BYTES = 1024 * 1024
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _too_large() -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The request body is larger than the limit of {MAX_BODY_BYTES} bytes."
    )


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 past ``MAX_BODY_BYTES``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(
    request: Request, fields: Collection[str], *, optional: bool = False
) -> dict[str, Any]:
    """The body as a JSON object of known ``fields``; a typo is a 400, not ignored.

    ``optional`` lets an empty body mean ``{}``.
    """
    body = await read_body(request)
    if optional and not body.strip():
        return {}
    payload = parse_payload(body)
    unknown = sorted(set(payload) - set(fields))
    if unknown:
        raise InvalidRequestError(
            f"Unknown field {unknown[0]!r}; this endpoint accepts "
            f"{', '.join(sorted(fields))}.",
            param=unknown[0],
        )
    return payload


def text_field(
    payload: dict[str, Any], key: str, *, required: bool, max_length: int
) -> str | None:
    value = payload.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidRequestError(
            f"'{key}' must be a non-empty string of at most {max_length} characters.",
            param=key,
        )
    return value.strip()


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    after: str | None


def page_of(request: Request) -> Page:
    """``limit`` (1-100, default 20) and the ``after`` cursor from the query."""
    raw = request.query_params.get("limit")
    limit = DEFAULT_LIMIT
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise InvalidRequestError(
                f"limit = {raw!r} must be a whole number from 1 to {MAX_LIMIT}.",
                param="limit",
            )
        limit = int(raw)
    return Page(limit, request.query_params.get("after") or None)


def listing(items: Sequence[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's list envelope; pass ``last_id`` back as ``after`` for more."""
    return {
        "object": "list",
        "data": list(items),
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }
