"""Unit checks for counting rules that protect budgets and bills."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from daylite.metering.estimate import input_bound, output_bound
from daylite.metering.pricing import count_from_usage
from daylite.streaming import StreamRelay


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": "12", "completion_tokens": 3},
        {"prompt_tokens": True, "completion_tokens": 3},
        {"prompt_tokens": -5, "completion_tokens": 3},
        {"prompt_tokens": 10**15, "completion_tokens": 3},
        {"total_tokens": 9},
    ],
)
def test_usage_that_is_not_whole_sane_counts_is_not_believed(usage: object) -> None:
    assert count_from_usage(usage) is None


def test_integral_float_counts_are_accepted() -> None:
    count = count_from_usage({"prompt_tokens": 12.0, "completion_tokens": 3})
    assert count is not None and (count.tokens_in, count.tokens_out) == (12, 3)


@pytest.mark.parametrize("kind", ["video_url", "audio_url", "file"])
def test_media_by_reference_reserves_the_media_allowance(kind: str) -> None:
    part = {"type": kind, kind: {"url": "https://example.invalid/x", "file_id": "f"}}
    body = {"messages": [{"role": "user", "content": [part]}]}

    assert input_bound(body, per_message=8, per_image=2000) == 2016


def test_prompt_lists_multiply_the_output_bound() -> None:
    assert (
        output_bound({"prompt": ["a", "b", "c"], "max_tokens": 10, "n": 2}, 100) == 60
    )
    assert output_bound({"prompt": [1, 2, 3], "max_tokens": 10}, 100) == 10


class _Upstream:
    status = 200
    content_type = "text/event-stream"

    def __init__(self, events: list[bytes]) -> None:
        self.events = events
        self.closed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for event in self.events:
            yield event
        # Then silence, as a backend that never sends [DONE] nor closes.
        import asyncio

        await asyncio.sleep(30)

    async def read(self) -> bytes:
        return b""

    async def aclose(self) -> None:
        self.closed = True


async def _relay(usage_first: bool) -> StreamRelay:
    usage = (
        b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n'
    )
    content = b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
    finish = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    events = [content, usage, finish] if usage_first else [content, finish, usage]
    relay = StreamRelay(_Upstream(events), choices=1, idle_timeout=10)
    await relay.open()
    async for _ in relay.events():
        pass
    return relay


@pytest.mark.parametrize("usage_first", [True, False])
def test_stream_ends_once_finished_and_usage_arrived_in_any_order(
    usage_first: bool,
) -> None:
    import asyncio
    import time

    started = time.monotonic()
    relay = asyncio.run(_relay(usage_first))

    assert relay.outcome == "complete"
    assert relay.usage == {"prompt_tokens": 1, "completion_tokens": 2}
    assert time.monotonic() - started < 2
