"""Throughput and latency of Daylite against a direct call to the fake upstream.

Starts the fake upstream and a real ``daylite serve`` (pinned to separate cores
where ``taskset`` exists), drives both with ``wrk`` at several concurrencies,
non-streaming and streaming (20 chunks), and prints req/s, p50 and p99 with the
ratio against direct. Everything it starts, it stops; every run is bounded by
``--duration``.

    .venv/bin/python -m benchmarks.run [--duration 10] [--connections 1,16,64]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

_LUA = """
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["X-Daylite-Customer"] = "bench"
wrk.headers["X-Daylite-Feature"] = "load"
"""


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _pin(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core)]
    return []


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, deadline_s: float = 20) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def _process(
    args: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def _ms(text: str) -> float:
    """wrk's latency text (``812.00us``, ``1.20ms``, ``2.00s``) in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        return float("nan")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(url: str, body: str, key: str, connections: int, duration: int) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA.format(body=body, key=key))
    try:
        output = subprocess.run(
            [
                *_pin(1),
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{duration}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=duration + 30,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    errors = 0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad:
        errors += int(bad.group(1))
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Result(rps, p50, p99, errors)


def ttfb(
    host: str, port: int, body: str, key: str, count: int = 500
) -> tuple[float, float]:
    """Median and p99 milliseconds until the first event of a stream, one at a time."""
    import http.client

    connection = http.client.HTTPConnection(host, port, timeout=10)
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {key}",
        "X-Daylite-Customer": "bench",
    }
    times = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", "/v1/chat/completions", body, headers)
        response = connection.getresponse()
        response.readline()
        times.append((time.perf_counter() - started) * 1000)
        response.read()
    connection.close()
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def _body(stream: bool) -> str:
    payload = {
        "model": "llama-3.3-70b",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "benchmark usage=12,20 words=20"}],
    }
    if stream:
        payload["stream"] = True
    return json.dumps(payload)


def _config(upstream: str) -> str:
    return f"""
[backends.fake]
base_url = "{upstream}"

[models."llama-3.3-70b"]
context_length = 131072
input = "0.30"
output = "0.50"
routes = [{{ backend = "fake" }}]
"""


def _start_gateway(
    data: Path, upstream_url: str, port: int
) -> tuple[list[str], dict[str, str]]:
    (data / "daylite.toml").write_text(_config(upstream_url))
    env = {
        **os.environ,
        "DAYLITE_DATA_DIR": str(data),
        "DAYLITE_PORT": str(port),
        "DAYLITE_LOG_LEVEL": "warning",
    }
    return [*_pin(0), str(Path(PYTHON).parent / "daylite"), "serve"], env


def _first_key(log: Path) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.search(r"(dl-[A-Za-z0-9_\-]{40})", log.read_text(errors="replace"))
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise RuntimeError("gateway printed no key")


def _fund_account(env: dict[str, str]) -> None:
    """Move the benchmark account to the paid plan with ample credits.

    The Developer tier's free requests would otherwise run out mid-run and
    turn the rest into 402s; a paid plan also exercises the credit debit.
    """
    daylite = str(Path(PYTHON).parent / "daylite")
    listing = subprocess.run(
        [daylite, "accounts", "list"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    account = re.search(r"(acct_\w+)", listing).group(1)  # type: ignore[union-attr]
    for args in (
        ["credits", "grant", account, "1000000", "--reason", "benchmark"],
        ["accounts", "set-plan", account, "pro"],
    ):
        subprocess.run([daylite, *args], env=env, check=True, capture_output=True)
    time.sleep(2.5)  # the gateway re-reads balances changed elsewhere every 2 s


def _set_budget(base: str, key: str) -> str:
    response = httpx.post(
        f"{base}/v1/budgets",
        headers={"authorization": f"Bearer {key}"},
        json={
            "customer_id": "bench",
            "monthly_cap_usd": "1000000",
            "action_on_cap": "block",
            "alert_thresholds": [0.9],
        },
        timeout=10,
    )
    return "on" if response.status_code in (200, 201) else "unavailable"


LITELLM_VENV = ROOT / "benchmarks" / ".litellm-venv"


def _litellm_command(
    upstream_url: str, port: int, workdir: Path, master_key: str
) -> list[str]:
    """Install LiteLLM proxy into its own venv once, and the command to run it."""
    binary = LITELLM_VENV / "bin" / "litellm"
    if not binary.exists():
        print("installing litellm[proxy] into benchmarks/.litellm-venv ...", flush=True)
        subprocess.run([PYTHON, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
            check=True,
            timeout=900,
        )
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: llama-3.3-70b\n"
        "    litellm_params:\n"
        "      model: openai/llama-3.3-70b\n"
        f"      api_base: {upstream_url}\n"
        "      api_key: fake\n"
        "general_settings:\n"
        f"  master_key: {master_key}\n"
    )
    return [
        *_pin(0),
        str(binary),
        "--config",
        str(config),
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument(
        "--litellm",
        action="store_true",
        help="also measure LiteLLM proxy (installed on first use)",
    )
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    levels = [int(c) for c in args.connections.split(",")]
    fake_port, gateway_port, litellm_port = _free_port(), _free_port(), _free_port()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        data = Path(tmp)
        litellm_url = None
        # LiteLLM refuses to start without a master key; a random one will do.
        litellm_key = "sk-bench-" + os.urandom(16).hex()
        if args.litellm:
            upstream = f"http://127.0.0.1:{fake_port}/v1"
            stack.enter_context(
                _process(
                    _litellm_command(upstream, litellm_port, data, litellm_key),
                    log=data / "litellm.log",
                )
            )
            litellm_url = f"http://127.0.0.1:{litellm_port}"
        fake_cmd = [
            *_pin(1),
            PYTHON,
            str(ROOT / "tests/fakes/upstream.py"),
            "--port",
            str(fake_port),
        ]
        gw_cmd, env = _start_gateway(
            data, f"http://127.0.0.1:{fake_port}/v1", gateway_port
        )
        log = data / "gateway.log"
        with _process(fake_cmd), _process(gw_cmd, env, log):
            _wait_http(f"http://127.0.0.1:{fake_port}/__stats")
            _wait_http(f"http://127.0.0.1:{gateway_port}/healthz")
            key = _first_key(log)
            _fund_account(env)
            budget = _set_budget(f"http://127.0.0.1:{gateway_port}", key)
            if litellm_url:
                _wait_http(f"{litellm_url}/health/liveliness", deadline_s=120)
            print(f"budget check: {budget}; duration {args.duration}s per cell")
            print(
                f"{'case':28} {'direct req/s':>13} {'daylite req/s':>14} {'ratio':>6}"
                f" {'p50 ms d/g':>14} {'p99 ms d/g':>14} {'errors':>7}"
            )
            for stream in (False, True):
                body = _body(stream)
                for c in levels:
                    direct = wrk(
                        f"http://127.0.0.1:{fake_port}/v1/chat/completions",
                        body,
                        key,
                        c,
                        args.duration,
                    )
                    gateway = wrk(
                        f"http://127.0.0.1:{gateway_port}/v1/chat/completions",
                        body,
                        key,
                        c,
                        args.duration,
                    )
                    name = f"{'stream 20 chunks' if stream else 'non-stream'} c={c}"
                    print(
                        f"{name:28} {direct.rps:13.0f} {gateway.rps:14.0f} "
                        f"{gateway.rps / direct.rps:6.2f} "
                        f"{direct.p50_ms:6.2f}/{gateway.p50_ms:<7.2f}"
                        f"{direct.p99_ms:6.2f}/{gateway.p99_ms:<7.2f}"
                        f"{direct.errors + gateway.errors:7d}",
                        flush=True,
                    )
                    if litellm_url:
                        other = wrk(
                            f"{litellm_url}/v1/chat/completions",
                            body,
                            litellm_key,
                            c,
                            args.duration,
                        )
                        print(
                            f"{'  litellm ' + name:28} {'':13} {other.rps:14.0f} "
                            f"{other.rps / direct.rps:6.2f} {'':6} {other.p50_ms:<7.2f}"
                            f" {'':5} {other.p99_ms:<7.2f}{other.errors:7d}",
                            flush=True,
                        )
            body = _body(True)
            direct_ttfb = ttfb("127.0.0.1", fake_port, body, key)
            gateway_ttfb = ttfb("127.0.0.1", gateway_port, body, key)
            print(
                f"{'stream TTFB c=1 (ms)':28} p50 {direct_ttfb[0]:.2f} direct, "
                f"{gateway_ttfb[0]:.2f} daylite; p99 {direct_ttfb[1]:.2f} direct, "
                f"{gateway_ttfb[1]:.2f} daylite"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
