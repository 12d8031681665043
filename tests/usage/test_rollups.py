"""Rollup rows: one addition per key for a whole batch, in a fixed key order."""

from __future__ import annotations

from daylite.metering.ledger import LedgerEntry
from daylite.usage.rollups import KEY, batch_rows, outcome_of, rollup_rows

MIDNIGHT = 1_796_860_800_000_000  # 2026-12-10T00:00:00Z


def entry(n: int, moment: int, status: str = "ok", **values: object) -> LedgerEntry:
    return LedgerEntry(
        id=f"req_{n}",
        account_id="acct_a",
        key_id=None,
        endpoint="chat",
        status=status,
        http_status=200,
        created_at=moment,
        tokens_in=10,
        tokens_out=20,
        cost_pico=1_000,
        **values,  # type: ignore[arg-type]
    )


def test_an_entry_adds_to_its_hour_day_and_month() -> None:
    rows = rollup_rows(entry(1, MIDNIGHT + 3_600_000_000 + 5, customer="c"))

    assert [(row["span"], row["bucket_start"]) for row in rows] == [
        ("month", MIDNIGHT - 9 * 86_400_000_000),
        ("day", MIDNIGHT),
        ("hour", MIDNIGHT + 3_600_000_000),
    ]
    assert {row["customer"] for row in rows} == {"c"}
    assert {(row["feature"], row["model"]) for row in rows} == {("", "")}


def test_a_batch_is_summed_per_key_and_sorted() -> None:
    batch = [
        entry(1, MIDNIGHT + 7, customer="b"),
        entry(2, MIDNIGHT + 9, customer="a"),
        entry(3, MIDNIGHT + 8, customer="b"),
        entry(4, MIDNIGHT + 8, status="invalid", customer="b"),
    ]

    rows = batch_rows(batch)

    keys = [tuple(row[name] for name in KEY) for row in rows]
    assert keys == sorted(keys) and len(keys) == len(set(keys)) == 9
    hour_b = [r for r in rows if r["span"] == "hour" and r["customer"] == "b"]
    assert [(r["outcome"], r["requests"], r["cost_pico"]) for r in hour_b] == [
        ("billed", 2, 2_000),
        ("refused", 1, 1_000),
    ]
    assert sum(row["requests"] for row in rows) == 3 * len(batch)


def test_outcome_classes() -> None:
    assert [outcome_of(s) for s in ("ok", "abandoned", "backend_error")] == [
        "billed"
    ] * 3
    assert [outcome_of(s) for s in ("refused", "invalid")] == ["refused"] * 2
    assert [outcome_of(s) for s in ("failed", "rejected", "new")] == ["failed"] * 3
    assert batch_rows([]) == []
