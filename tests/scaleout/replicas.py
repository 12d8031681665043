"""Real ``daylite serve`` processes sharing one database and one Redis.

A deployment is a directory with a config file, plus the environment every
replica gets; each replica is a subprocess on a port of its own, as an
operator would run them behind a load balancer.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.gateway import config_for, free_port

# A secret may end in '-', so its end is "no more key characters", not \b.
_KEY = re.compile(r"\bdl-(?!op-)[A-Za-z0-9_\-]{40}(?![A-Za-z0-9_\-])")
_OPERATOR_KEY = re.compile(r"\bdl-op-[A-Za-z0-9_\-]{40}(?![A-Za-z0-9_\-])")
_START_SECONDS = 60.0
_STOP_SECONDS = 15.0


@dataclass
class Deployment:
    """Everything replicas share: database, Redis, upstream and config file."""

    root: Path
    database_url: str
    redis_url: str | None
    redis_prefix: str
    upstream_url: str
    gateway: Mapping[str, object] = field(default_factory=dict)
    replicas: list[Replica] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        table = "\n".join(f"{k} = {_toml(v)}" for k, v in self.gateway.items())
        text = f"[gateway]\n{table}\n\n" + config_for(self.upstream_url)
        self.config_path.write_text(text, encoding="utf-8")

    @property
    def config_path(self) -> Path:
        return self.root / "daylite.toml"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAYLITE_")}
        env.update(
            DAYLITE_CONFIG=str(self.config_path),
            DAYLITE_DATA_DIR=str(self.root / "data"),
            DAYLITE_DATABASE_URL=self.database_url,
            DAYLITE_REDIS_PREFIX=self.redis_prefix,
            DAYLITE_LOG_LEVEL="warning",
        )
        if self.redis_url is not None:
            env["DAYLITE_REDIS_URL"] = self.redis_url
        env.update(extra)
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "daylite", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def operator_key(self) -> str:
        done = self.cli("keys", "create", "--operator", "--name", "test operator")
        found = _OPERATOR_KEY.search(done.stdout)
        assert found, done.stdout + done.stderr
        return found.group(0)

    def replica(self, *args: str) -> Replica:
        replica = Replica(self, len(self.replicas) + 1, list(args))
        self.replicas.append(replica)
        return replica

    def stop_all(self) -> None:
        for replica in self.replicas:
            replica.stop()


def _toml(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(value).lower() if isinstance(value, bool) else str(value)


class Replica:
    """One ``daylite serve`` subprocess; it keeps its port across restarts."""

    def __init__(self, deployment: Deployment, number: int, args: list[str]) -> None:
        self.deployment = deployment
        self.number = number
        self.args = args
        self.port = free_port()
        self.log = deployment.root / f"replica-{number}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> Replica:
        """Start the process without waiting for it to serve."""
        self._starts += 1
        with self.log.open("ab") as log:
            log.write(f"--- start {self._starts}\n".encode())
            self._process = subprocess.Popen(
                [sys.executable, "-m", "daylite", "serve", "--port", str(self.port)]
                + self.args,
                env=self.deployment.env(),
                cwd=self.deployment.root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self) -> Replica:
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"replica {self.number} exited:\n{self.output()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"replica {self.number} did not start:\n{self.output()}")

    def start(self) -> Replica:
        return self.launch().wait_ready()

    def workers(self) -> int:
        """How many worker processes serve for this replica (``--workers``)."""
        assert self._process is not None
        pid = str(self._process.pid)
        count = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            count += fields[1] == pid
        return count

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def first_key(self) -> str | None:
        found = _KEY.search(self.output())
        return found.group(0) if found else None

    def kill(self) -> None:
        """kill -9: no shutdown, no draining, nothing flushed."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=_STOP_SECONDS)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.kill(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
