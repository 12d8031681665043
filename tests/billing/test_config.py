"""The ``[billing]`` table: packs in exact money, secrets from the environment."""

from __future__ import annotations

from typing import Any

import pytest

from daylite.billing.config import CreditPack, load_billing_config
from daylite.settings import ConfigError

PACK = {"id": "starter", "price_usd": "10.00", "credits_usd": "10.5"}


def test_packs_are_exact_cents_and_pico_dollars() -> None:
    config = load_billing_config({"packs": [PACK]}, {})

    assert config.packs == (CreditPack("starter", "starter", 1000, 10_500_000_000_000),)
    assert config.stripe_secret_key is None


def test_environment_wins_over_the_file() -> None:
    table = {"stripe_secret_key": "sk_test_file", "stripe_api_base": "http://a/"}
    environ = {
        "DAYLITE_STRIPE_SECRET_KEY": "sk_test_env",
        "DAYLITE_STRIPE_WEBHOOK_SECRET": "whsec_env",
        "DAYLITE_STRIPE_API_BASE": "http://127.0.0.1:9/",
        "DAYLITE_STRIPE_SUCCESS_URL": "https://shop.test/ok",
    }

    config = load_billing_config(table, environ)

    assert config.stripe_secret_key == "sk_test_env"
    assert config.stripe_webhook_secret == "whsec_env"
    assert config.stripe_api_base == "http://127.0.0.1:9"
    assert config.success_url == "https://shop.test/ok"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"packs": [{**PACK, "price_usd": "9.999"}]}, "price_usd"),
        ({"packs": [{**PACK, "credits_usd": "0"}]}, "credits_usd"),
        ({"packs": [{**PACK, "id": "Bad Id"}]}, "id"),
        ({"packs": [PACK, PACK]}, "duplicate"),
        ({"packs": [{"id": "x", "price_usd": "1"}]}, "credits_usd"),
        ({"packz": []}, "unknown keys"),
        ({"stripe_api_base": "ftp://x"}, "http"),
        ({"refresh_seconds": 0}, "refresh_seconds"),
    ],
)
def test_bad_tables_stop_start_up_with_a_clear_message(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_billing_config(table, {})
