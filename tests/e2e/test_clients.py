"""Other clients a user has: the openai npm package, curl, and the daylite CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gateway import GatewayServer

JS_DIR = Path(__file__).resolve().parents[1] / "js"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_openai_npm_package_gets_exact_cost(gateway: GatewayServer) -> None:
    if not (JS_DIR / "node_modules" / "openai").is_dir():
        pytest.fail(
            "run `make test` (or npm ci in tests/js) to install the openai package"
        )
    result = subprocess.run(
        ["node", str(JS_DIR / "chat.mjs"), gateway.url, gateway.key],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(result.stdout)

    assert seen["cost"] == "0.0004271"
    assert seen["usageCost"] == "0.0004271"
    assert (seen["tokensIn"], seen["tokensOut"]) == ("12", "847")
    assert seen["customer"] == "js_customer"
    assert seen["content"] == "w0 w1 w2"
    entry = gateway.ledger(seen["requestId"])
    assert (entry["customer"], entry["feature"]) == ("js_customer", "js")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_seed_curl_example_returns_the_daylite_headers(gateway: GatewayServer) -> None:
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-D",
            "-",
            f"{gateway.url}/chat/completions",
            "-H",
            f"Authorization: Bearer {gateway.key}",
            "-H",
            "Content-Type: application/json",
            "-H",
            "X-Daylite-Customer: customer_123",
            "-H",
            "X-Daylite-Feature: chat",
            "-d",
            '{"model":"llama-3.3-70b","messages":[{"role":"user",'
            '"content":"Hello usage=12,847"}]}',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    head, _, body = result.stdout.partition("\n\n")
    headers = dict(
        line.lower().split(": ", 1) for line in head.splitlines()[1:] if ": " in line
    )

    assert head.startswith("HTTP/1.1 200")
    assert headers["x-daylite-cost"] == "0.0004271"
    assert headers["x-daylite-tokens-in"] == "12"
    assert headers["x-daylite-tokens-out"] == "847"
    assert headers["x-daylite-customer"] == "customer_123"
    assert headers["x-daylite-request-id"].startswith("req_")
    assert json.loads(body)["usage"]["cost"] == "0.0004271"


def _daylite(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DAYLITE_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "daylite", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_cli_creates_lists_and_revokes_keys_without_showing_hashes(
    tmp_path: Path,
) -> None:
    created = _daylite(tmp_path, "accounts", "create", "acme")
    account = created.stdout.split("account: ")[1].split()[0]
    key = _daylite(tmp_path, "keys", "create", "--account", account, "--name", "ci")
    key_id = key.stdout.split("id:")[1].split()[0]
    secret = key.stdout.split("secret:")[1].split()[0]
    listed = _daylite(tmp_path, "keys", "list")
    revoked = _daylite(tmp_path, "keys", "revoke", key_id)
    after = _daylite(tmp_path, "keys", "list")

    assert created.returncode == key.returncode == revoked.returncode == 0
    assert secret.startswith("dl-") and len(secret) == 43
    assert key_id in listed.stdout and secret not in listed.stdout
    assert secret[:12] in listed.stdout
    assert "revoked" in after.stdout.split(key_id)[1].splitlines()[0]


def test_start_refuses_a_model_without_a_price(tmp_path: Path) -> None:
    config = tmp_path / "daylite.toml"
    config.write_text('[models."free-lunch"]\ncontext_length = 1000\ninput = "0.1"\n')
    env = {
        **os.environ,
        "DAYLITE_DATA_DIR": str(tmp_path),
        "DAYLITE_CONFIG": str(config),
    }
    result = subprocess.run(
        [sys.executable, "-m", "daylite", "migrate"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )

    assert result.returncode == 2
    assert "model 'free-lunch' has no output price" in result.stderr


def test_start_refuses_a_bad_credit_pack_with_exit_code_2(tmp_path: Path) -> None:
    from daylite.catalog import default_config_text

    config = tmp_path / "daylite.toml"
    config.write_text(
        default_config_text() + '\n[billing]\n[[billing.packs]]\nid = "starter"\n'
        'price_usd = "10.001"\ncredits_usd = "10"\n'
    )
    env = {
        **os.environ,
        "DAYLITE_DATA_DIR": str(tmp_path),
        "DAYLITE_CONFIG": str(config),
    }
    result = subprocess.run(
        [sys.executable, "-m", "daylite", "serve", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )

    assert result.returncode == 2
    assert "price_usd = '10.001' is not valid" in result.stderr
    assert "Traceback" not in result.stderr
