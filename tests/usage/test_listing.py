"""The request-list cursor: opaque, round-trips exactly, refuses anything else."""

from __future__ import annotations

import pytest

from daylite.errors import InvalidRequestError
from daylite.usage.listing import (
    Position,
    decode_cursor,
    encode_cursor,
    parse_statuses,
)


def test_a_cursor_round_trips() -> None:
    position = Position(1_796_860_800_000_001, "req_00mx96tobdrpmda8wldyb6")

    assert decode_cursor(encode_cursor(position)) == position
    assert decode_cursor(None) is None


@pytest.mark.parametrize(
    "text", ["", "!!!", "MTIz", "eA", "MTI6cmVxJyBPUiAxPTE", "0" * 200]
)
def test_a_cursor_not_made_by_the_api_is_400(text: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_cursor(text)

    assert caught.value.param == "cursor"


def test_statuses_are_a_comma_list_of_plain_words() -> None:
    assert parse_statuses("ok, refused") == ("ok", "refused")
    assert parse_statuses(None) == ()
    with pytest.raises(InvalidRequestError) as caught:
        parse_statuses("ok;drop")
    assert caught.value.param == "status"
