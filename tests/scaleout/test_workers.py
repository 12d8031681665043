"""``daylite serve --workers N``: shared Redis required, one migration, one cap."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.fakes.upstream import FakeUpstream
from tests.scaleout.replicas import Deployment
from tests.scaleout.services import fresh_database, fresh_prefix
from tests.scaleout.traffic import (
    cost_of,
    exact_body,
    set_budget,
    sql,
    swarm,
)


def test_several_workers_without_redis_are_refused_with_the_reason(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'daylite.db'}"
    deployment = Deployment(tmp_path / "deploy", sqlite, None, "daylite", upstream.url)

    done = subprocess.run(
        [sys.executable, "-m", "daylite", "serve", "--workers", "2"],
        env=deployment.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "--workers 2 needs DAYLITE_REDIS_URL" in done.stderr
    assert "Set DAYLITE_REDIS_URL" in done.stderr
    assert not (tmp_path / "daylite.db").exists()


def test_two_workers_share_one_cap_and_one_first_key(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with fresh_database() as database, fresh_prefix() as (redis_url, prefix):
        deployment = Deployment(
            tmp_path / "deploy", database, redis_url, prefix, upstream.url
        )
        server = deployment.replica("--workers", "2")
        try:
            server.start()
            key = server.first_key()
            assert key is not None
            workers = server.workers()
            body = exact_body(40)
            set_budget(server, key, "workers", str(cost_of(body) * 5))

            outcomes = swarm([server], key, "workers", body, 40)

            accounts = sql(database, "SELECT count(*) FROM accounts")[0][0]
        finally:
            deployment.stop_all()

    assert Counter(o.status for o in outcomes) == {200: 5, 429: 35}
    assert upstream.calls == 5
    assert accounts == 1
    assert workers >= 2
