"""Command-line tools for a DeltaDB store: a thin layer over the library.

Each subcommand parses its arguments and calls one library function; the
library does the work, so everything here is also usable from Python.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from deltadb_dialect import keys

Handler = Callable[[argparse.Namespace], int]


def _cmd_keygen(args: argparse.Namespace) -> int:
    key_hex = keys.generate_master_key_hex()
    if args.out is None:
        print(key_hex)
        return 0
    path = keys.write_key_file(args.out, key_hex)
    print(f"Wrote a new DeltaDB master key to {path} (mode 0600). Back it up: "
          "without it the store cannot be read.", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deltadb_dialect",
                                     description="Tools for DeltaDB encrypted stores.")
    sub = parser.add_subparsers(dest="command", required=True)

    keygen = sub.add_parser("keygen", help="print a new 256-bit master key (64 hex characters)")
    keygen.add_argument("--out", help="write the key to this file (mode 0600) instead of stdout")
    keygen.set_defaults(handler=_cmd_keygen)

    _add_store_commands(sub)
    _add_server_commands(sub)
    return parser


def _add_store_commands(sub: argparse._SubParsersAction) -> None:
    from deltadb_dialect import migrate, tools

    tools.add_commands(sub)
    migrate.add_command(sub)


def _add_server_commands(sub: argparse._SubParsersAction) -> None:
    try:
        from deltadb_dialect.server import cli as server_cli
    except ImportError:  # the REST server's optional dependencies are missing
        return
    server_cli.add_commands(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line message, never a traceback with secrets
        if os.environ.get("DELTADB_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
