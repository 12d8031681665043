"""``daylite``: serve the gateway and manage it from the shell."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from daylite.cli import accounts_cmd, credits_cmd, keys_cmd, serve_cmd
from daylite.settings import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="daylite", description="OpenAI-compatible gateway with exact cost."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd.add_parser(commands)
    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=serve_cmd.run_migrate)
    keys_cmd.add_parser(commands)
    accounts_cmd.add_parser(commands)
    credits_cmd.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.run(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except ConfigError as exc:
        print(f"daylite: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout.flush()
        os.environ.pop("_DAYLITE_UNUSED", None)
