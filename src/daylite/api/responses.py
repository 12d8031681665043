"""Response helpers shared by the handlers: JSON and the OpenAI error body."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from daylite.errors import DayliteError, status_of


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(
    error: DayliteError,
    request_id: str | None = None,
    extra: dict[str, str] | None = None,
) -> Response:
    headers = error.headers()
    if request_id:
        headers["x-daylite-request-id"] = request_id
    if extra:
        headers.update(extra)
    return Response(
        error.to_json(),
        status_code=status_of(error),
        headers=headers,
        media_type="application/json",
    )
