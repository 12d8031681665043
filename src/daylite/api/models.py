"""``GET /v1/models``: the catalog in OpenAI's list format, with prices."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from daylite.api.responses import JSONResponse
from daylite.catalog import Model
from daylite.errors import NotFoundError
from daylite.money import format_usd


def _per_million(micro: int | None) -> str | None:
    return None if micro is None else format_usd(micro * 10**6)


def describe(model: Model) -> dict[str, Any]:
    price = model.price
    return {
        "id": model.id,
        "object": "model",
        "created": 0,
        "owned_by": "daylite",
        "context_length": model.context_length,
        "max_output_tokens": model.max_output_tokens,
        "pricing": {
            "unit": "USD per 1M tokens",
            "input": _per_million(price.input),
            "output": _per_million(price.output),
            "cached_input": _per_million(price.cached_input),
            "batch_input": _per_million(price.batch_input),
            "batch_output": _per_million(price.batch_output),
        },
        "simulated": model.simulated,
    }


async def list_models(request: Request) -> Response:
    await request.app.state.gateway.keys.authenticate(
        request.headers.get("authorization")
    )
    catalog = request.app.state.gateway.catalog
    data = [describe(model) for model in catalog.models.values()]
    return JSONResponse({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    await request.app.state.gateway.keys.authenticate(
        request.headers.get("authorization")
    )
    model_id = request.path_params["model_id"]
    model = request.app.state.gateway.catalog.get(model_id)
    if model is None:
        raise NotFoundError(f"The model {model_id!r} does not exist.", param="model")
    return JSONResponse(describe(model))
