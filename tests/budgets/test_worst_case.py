"""Worst-case bounds that reservations rely on, and clamping to a budget."""

from __future__ import annotations

import tomllib
from typing import Any

from daylite.admission import Call
from daylite.auth import Principal
from daylite.budgets.guard import clamp
from daylite.catalog import build_catalog
from daylite.metering.estimate import input_bound, output_bound
from tests.support.gateway import config_for

CONFIG = tomllib.loads(config_for("http://127.0.0.1:9/v1"))
MODEL = build_catalog(CONFIG, "test").models["llama-3.3-70b"]


def _bound(messages: list[dict[str, Any]]) -> int:
    return input_bound({"messages": messages}, per_message=8, per_image=2000)


def test_every_image_shape_counts_one_allowance_never_its_base64() -> None:
    data = "data:image/jpeg;base64," + "A" * 270_000
    shapes = [
        {"type": "image_url", "image_url": {"url": data}},
        {"type": "input_image", "image_url": data},
        {"image_url": {"url": data}},
    ]
    for shape in shapes:
        content = [{"type": "text", "text": "describe"}, shape]
        assert _bound([{"role": "user", "content": content}]) == 8 + 16 + 2000


def test_message_level_images_count_as_images() -> None:
    message = {"role": "user", "content": "hi", "images": ["A" * 100_000]}

    assert _bound([message]) == 2 + 16 + 2000


def test_every_other_message_field_counts_as_prompt_text() -> None:
    message = {
        "role": "assistant",
        "content": "ok",
        "reasoning_content": "x" * 100,
        "tool_call_id": "call_1",
    }

    # "ok" + the JSON string of the reasoning (102) and of the id (8).
    assert _bound([message]) == 2 + 102 + 8 + 16


def test_unknown_part_kinds_count_their_full_size() -> None:
    part = {"type": "video_url", "video_url": {"url": "https://v.test/a.mp4"}}

    assert _bound([{"role": "user", "content": [part]}]) > len("https://v.test/a.mp4")


def test_output_bound_takes_the_larger_of_both_limits_times_choices() -> None:
    assert output_bound({"max_tokens": 10, "max_completion_tokens": 500}, 4096) == 500
    assert output_bound({"max_tokens": 500, "max_completion_tokens": 10}, 4096) == 500
    assert output_bound({"max_tokens": 100, "n": 3}, 4096) == 300
    assert output_bound({"max_tokens": 100, "n": 2, "best_of": 4}, 4096) == 400
    assert output_bound({}, 4096) == 4096


def _call(payload: dict[str, Any]) -> Call:
    call = Call(
        request_id="req_1",
        principal=Principal("key_1", "acct_1", "account"),
        account_id="acct_1",
        endpoint="chat",
        customer="c",
        feature=None,
        model=MODEL,
        payload=payload,
        stream=False,
        created_at=0,
    )
    call.input_bound = 30
    call.output_bound = output_bound(payload, MODEL.max_output_tokens)
    call.worst_case_pico = (
        30 * MODEL.price.input + call.output_bound * MODEL.price.output
    )
    return call


def test_clamp_lowers_both_limits_and_the_worst_case_to_fit() -> None:
    call = _call({"max_tokens": 5000, "max_completion_tokens": 5000, "n": 2})

    clamp(call, 1_000_000_000)

    # (0.001 - 30 x 0.30/M) / (2 choices x 0.50/M) = 991 tokens each.
    assert call.payload["max_tokens"] == 991
    assert call.payload["max_completion_tokens"] == 991
    assert call.output_bound == 1982
    assert call.worst_case_pico == 9_000_000 + 1982 * 500_000
    assert call.worst_case_pico <= 1_000_000_000
    assert call.response_headers == {"x-daylite-budget-clamped": "991"}


def test_clamp_adds_max_tokens_when_the_client_set_none() -> None:
    call = _call({"messages": []})

    clamp(call, 10_000_000)

    assert call.payload["max_tokens"] == 2
    assert "max_completion_tokens" not in call.payload
