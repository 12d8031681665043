"""Resident memory of one gateway process over many requests.

Sends ``--requests`` (default 200,000) non-streaming chat calls through a real
``daylite serve`` at a fixed concurrency, samples the process's resident set
size every 10,000 requests, and reports growth after warm-up. Bounded by
``--max-seconds``; stops everything it started.

    .venv/bin/python -m benchmarks.memory [--requests 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from benchmarks.run import (
    PYTHON,
    ROOT,
    _first_key,
    _free_port,
    _fund_account,
    _pin,
    _process,
    _set_budget,
    _start_gateway,
    _wait_http,
)

_BODY = (
    b'{"model":"llama-3.3-70b","max_tokens":64,"messages":'
    b'[{"role":"user","content":"memory usage=12,20 words=20"}]}'
)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def drive(
    url: str, key: str, total: int, concurrency: int, pid: int, deadline: float
) -> list[tuple[int, float]]:
    samples: list[tuple[int, float]] = [(0, rss_mb(pid))]
    sent = 0
    failures = 0
    headers = {
        "authorization": f"Bearer {key}",
        "content-type": "application/json",
        "x-daylite-customer": "bench",
    }
    async with aiohttp.ClientSession(headers=headers) as session:
        done = 0

        async def worker() -> None:
            nonlocal sent, failures, done
            while sent < total and time.monotonic() < deadline:
                sent += 1
                async with session.post(url, data=_BODY) as response:
                    await response.read()
                    if response.status != 200:
                        failures += 1
                done += 1
                if done % 10_000 == 0:
                    samples.append((done, rss_mb(pid)))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if failures:
        print(f"{failures} requests failed")
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-seconds", type=int, default=900)
    args = parser.parse_args(argv)
    fake_port, gateway_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        fake = [
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
        with _process(fake), _process(gw_cmd, env, log) as gateway:
            _wait_http(f"http://127.0.0.1:{fake_port}/__stats")
            _wait_http(f"http://127.0.0.1:{gateway_port}/healthz")
            key = _first_key(log)
            _fund_account(env)
            print(
                f"budget check: {_set_budget(f'http://127.0.0.1:{gateway_port}', key)}"
            )
            started = time.monotonic()
            samples = asyncio.run(
                drive(
                    f"http://127.0.0.1:{gateway_port}/v1/chat/completions",
                    key,
                    args.requests,
                    args.concurrency,
                    gateway.pid,
                    started + args.max_seconds,
                )
            )
            elapsed = time.monotonic() - started
    for count, mb in samples:
        print(f"{count:>8} requests  {mb:7.1f} MB")
    warm = next((mb for count, mb in samples if count >= 20_000), samples[0][1])
    last = samples[-1][1]
    print(
        f"sent {samples[-1][0]} in {elapsed:.0f}s; after warm-up {warm:.1f} MB, "
        f"end {last:.1f} MB, growth {100 * (last - warm) / warm:+.1f}%, "
        f"peak {max(mb for _, mb in samples):.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
