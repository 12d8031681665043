"""``GET /v1/usage``: the calling account's spend by customer, feature and model."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from daylite.api.principal import account_principal
from daylite.api.responses import JSONResponse
from daylite.money import format_usd
from daylite.timefmt import iso_from_us
from daylite.usage.csv_export import filename, open_export
from daylite.usage.params import (
    FORMATS,
    GRANULARITIES,
    parse_choice,
    parse_id,
    parse_range,
    single_values,
)
from daylite.usage.query import Group, Summary, Tally, UsageFilter, summarize
from daylite.usage.spans import DAY_US

PARAMETERS = ("customer", "feature", "model", "start", "end", "granularity", "format")
ROLLUPS_EXTENSION = "usage"
BUDGETS_EXTENSION = "budgets"


def tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "cost": format_usd(tally.cost_pico),
        "requests": tally.requests,
        "billedRequests": tally.billed,
        "refusedRequests": tally.refused,
        "failedRequests": tally.failed,
        "tokensIn": tally.tokens_in,
        "tokensOut": tally.tokens_out,
    }


def _groups(name: str, groups: tuple[Group, ...]) -> list[dict[str, Any]]:
    return [{name: group.key, **tally_json(group.tally)} for group in groups]


def _iso(moment: int | None) -> str | None:
    return None if moment is None else iso_from_us(moment)


def present(flt: UsageFilter, granularity: str | None, summary: Summary) -> Any:
    total = summary.total
    body: dict[str, Any] = {
        "object": "usage",
        "filters": {
            "customer": flt.customer,
            "feature": flt.feature,
            "model": flt.model,
            "start": _iso(flt.start),
            "end": _iso(flt.end),
            "granularity": granularity,
        },
        "currency": "USD",
        "totalCost": format_usd(total.cost_pico),
        "totalRequests": total.requests,
        "billedRequests": total.billed,
        "refusedRequests": total.refused,
        "failedRequests": total.failed,
        "totalTokensIn": total.tokens_in,
        "totalTokensOut": total.tokens_out,
        "byFeature": _groups("feature", summary.by_feature),
        "byModel": _groups("model", summary.by_model),
        "byCustomer": _groups("customer", summary.by_customer),
    }
    if summary.series is not None:
        body["series"] = [
            {"start": iso_from_us(point.start), **tally_json(point.tally)}
            for point in summary.series
        ]
    return body


def _wants_csv(request: Request) -> bool:
    accepted = request.headers.get("accept", "")
    return any(
        part.split(";")[0].strip().lower() == "text/csv" for part in accepted.split(",")
    )


async def _budget(request: Request, account_id: str, customer: str) -> Any:
    budgets = request.app.state.extensions.get(BUDGETS_EXTENSION)
    status = getattr(budgets, "status", None)
    if status is None:
        return None
    return await status(account_id, customer)


async def get_usage(request: Request) -> Response:
    principal = await account_principal(request)
    assert principal.account_id is not None
    values = single_values(request.query_params, PARAMETERS)
    start, end = parse_range(values)
    flt = UsageFilter(
        principal.account_id,
        customer=parse_id("customer", values.get("customer")),
        feature=parse_id("feature", values.get("feature")),
        model=parse_id("model", values.get("model")),
        start=start,
        end=end,
    )
    granularity = parse_choice("granularity", values.get("granularity"), GRANULARITIES)
    form = parse_choice("format", values.get("format"), FORMATS)
    size = GRANULARITIES[granularity] if granularity else None
    # Without the extension no rollups are kept, so only the ledger is the truth.
    rollups = ROLLUPS_EXTENSION in request.app.state.extensions
    engine = request.app.state.engine
    if form == "csv" or (form is None and _wants_csv(request)):
        chunks = await open_export(engine, flt, size or DAY_US, rollups=rollups)
        disposition = f'attachment; filename="{filename(flt)}"'
        return StreamingResponse(
            chunks,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": disposition, "cache-control": "no-store"},
        )
    async with engine.connect() as connection:
        summary = await summarize(connection, flt, granularity=size, rollups=rollups)
    body = present(flt, granularity, summary)
    if flt.customer is not None:
        body["budget"] = await _budget(request, principal.account_id, flt.customer)
    return JSONResponse(body)
