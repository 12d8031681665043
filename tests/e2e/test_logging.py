"""Structured logs: one access line per request with its id, and no secrets."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from daylite.logs import JsonFormatter
from tests.support.gateway import GatewayServer


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("daylite")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_access_line_names_request_account_and_customer(
    gateway: GatewayServer, log_lines: io.StringIO
) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="llama-3.3-70b",
        messages=[{"role": "user", "content": "x usage=12,847"}],
        extra_headers={"X-Daylite-Customer": "logged"},
    )
    request_id = raw.headers["x-daylite-request-id"]

    lines = [orjson.loads(line) for line in log_lines.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "daylite.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == request_id
    assert access[0]["customer"] == "logged"
    assert access[0]["cost"] == "0.0004271"
    assert access[0]["account"].startswith("acct_")
    assert gateway.key not in log_lines.getvalue()


def test_secrets_in_messages_are_redacted(log_lines: io.StringIO) -> None:
    secret = "dl-abcdefghSECRETSECRETSECRET"
    logging.getLogger("daylite.test").warning(
        "header was Authorization: Bearer %s and key %s", secret, secret
    )

    line = log_lines.getvalue()
    assert "SECRETSECRET" not in line
    assert "dl-abcdefgh[REDACTED]" in line
