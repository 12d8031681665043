"""`daylite credits grant` and `daylite accounts set-plan|show` on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from daylite.cli.main import main


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAYLITE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DAYLITE_DATABASE_URL", raising=False)
    monkeypatch.delenv("DAYLITE_CONFIG", raising=False)
    monkeypatch.delenv("DAYLITE_CONFIG_PATH", raising=False)
    return tmp_path


def _account(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["accounts", "create", "acme"]) == 0
    first_line = capsys.readouterr().out.splitlines()[0]
    return first_line.split()[-1]


def test_grant_adds_credits_with_its_reason(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account_id = _account(capsys)

    assert main(["credits", "grant", account_id, "2.50", "--reason", "pilot"]) == 0
    assert main(["credits", "grant", account_id, "0.000001", "--reason", "x"]) == 0

    out = capsys.readouterr().out
    assert "Granted 2.5 USD" in out
    assert "balance: 2.500001 USD" in out
    assert main(["accounts", "show", account_id]) == 0
    shown = capsys.readouterr().out
    assert "balance:  2.500001 USD" in shown
    assert "free:     50000 of 50000 requests left" in shown


def test_grant_refuses_bad_amounts_and_unknown_accounts(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account_id = _account(capsys)

    with pytest.raises(SystemExit, match="must be > 0"):
        main(["credits", "grant", account_id, "0", "--reason", "x"])
    with pytest.raises(SystemExit, match="not valid"):
        main(["credits", "grant", account_id, "ten", "--reason", "x"])
    with pytest.raises(SystemExit):
        main(["credits", "grant", account_id, "1"])
    assert main(["credits", "grant", "acct_nope", "1", "--reason", "x"]) == 1


def test_set_plan_moves_the_account(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account_id = _account(capsys)

    assert main(["accounts", "set-plan", account_id, "pro"]) == 0
    assert main(["accounts", "show", account_id]) == 0

    assert "plan:     pro" in capsys.readouterr().out
