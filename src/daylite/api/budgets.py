"""Budget and webhook endpoints: ``/v1/budgets`` and ``/v1/webhook``."""

from __future__ import annotations

from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from daylite.api.management import page_of, read_body
from daylite.api.principal import account_principal
from daylite.api.responses import JSONResponse
from daylite.budgets.endpoint import parse_endpoint
from daylite.budgets.extension import NAME, BudgetsExtension
from daylite.budgets.policy import customer_id_of, parse_budget
from daylite.errors import NotFoundError
from daylite.validation import parse_payload


def _budgets(request: Request) -> BudgetsExtension:
    return cast(BudgetsExtension, request.app.state.extensions[NAME])


async def _account(request: Request) -> str:
    principal = await account_principal(request)
    assert principal.account_id is not None
    return principal.account_id


async def _json(request: Request) -> dict[str, Any]:
    # The parsers in daylite.budgets name unknown fields themselves.
    return parse_payload(await read_body(request))


def _customer(request: Request) -> str:
    return customer_id_of(request.path_params["customer_id"])


def _no_budget(customer: str) -> NotFoundError:
    return NotFoundError(
        f"Customer {customer!r} has no budget; create one with POST /v1/budgets.",
        param="customer_id",
    )


async def put_budget(request: Request) -> Response:
    """``POST /v1/budgets``: create (201) or replace (200) a customer's budget."""
    account_id = await _account(request)
    extension = _budgets(request)
    budget = parse_budget(await _json(request), account_id, extension.clock.now_us())
    status, created = await extension.put(budget)
    return JSONResponse(status, status_code=201 if created else 200)


async def list_budgets(request: Request) -> Response:
    """``GET /v1/budgets``: every budget of the account, by customer id."""
    account_id = await _account(request)
    page = page_of(request)
    items = await _budgets(request).statuses(account_id, page.after, page.limit + 1)
    more = len(items) > page.limit
    items = items[: page.limit]
    return JSONResponse(
        {
            "object": "list",
            "data": items,
            "first_id": items[0]["customer_id"] if items else None,
            "last_id": items[-1]["customer_id"] if items else None,
            "has_more": more,
        }
    )


async def get_budget(request: Request) -> Response:
    """``GET /v1/budgets/{customer_id}``: the budget and this month's spend."""
    account_id = await _account(request)
    customer = _customer(request)
    status = await _budgets(request).status(account_id, customer)
    if status is None:
        raise _no_budget(customer)
    return JSONResponse(status)


async def delete_budget(request: Request) -> Response:
    """``DELETE /v1/budgets/{customer_id}``: remove the limit at once."""
    account_id = await _account(request)
    customer = _customer(request)
    if not await _budgets(request).delete(account_id, customer):
        raise _no_budget(customer)
    return JSONResponse({"object": "budget", "customer_id": customer, "deleted": True})


async def put_webhook(request: Request) -> Response:
    """``PUT /v1/webhook``: set the alert URL; a generated secret is shown once."""
    account_id = await _account(request)
    url, secret = parse_endpoint(await _json(request))
    endpoint, shown = await _budgets(request).set_endpoint(account_id, url, secret)
    body = endpoint.present()
    if shown is not None:
        body["secret"] = shown
    return JSONResponse(body)


async def get_webhook(request: Request) -> Response:
    """``GET /v1/webhook``: the alert URL and a hint of the secret."""
    account_id = await _account(request)
    return JSONResponse((await _budgets(request).endpoint(account_id)).present())


async def delete_webhook(request: Request) -> Response:
    """``DELETE /v1/webhook``: stop sending alerts; later events are not sent."""
    account_id = await _account(request)
    await _budgets(request).clear_endpoint(account_id)
    return JSONResponse({"object": "webhook", "url": None, "deleted": True})


def budget_routes() -> list[BaseRoute]:
    return [
        Route("/v1/budgets", put_budget, methods=["POST"]),
        Route("/v1/budgets", list_budgets, methods=["GET"]),
        Route("/v1/budgets/{customer_id:path}", get_budget, methods=["GET"]),
        Route("/v1/budgets/{customer_id:path}", delete_budget, methods=["DELETE"]),
        Route("/v1/webhook", put_webhook, methods=["PUT"]),
        Route("/v1/webhook", get_webhook, methods=["GET"]),
        Route("/v1/webhook", delete_webhook, methods=["DELETE"]),
    ]
