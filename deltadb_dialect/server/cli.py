"""The entity server's commands in ``python -m deltadb_dialect``: serve, export, import.

``deltadb_dialect.cli`` calls ``add_commands(subparsers)`` when this package is importable.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

ADMIN_KEY_ENV = "DELTADB_ADMIN_KEY"


def store_url(store: str, key_file: str | None = None) -> str:
    """A SQLAlchemy URL for ``--store``: a URL as given, else a deltadb store directory."""
    if "://" in store:
        return store
    url = "deltadb:///" + str(Path(store).expanduser().resolve())
    if key_file:
        url += "?key_file=" + str(Path(key_file).expanduser().resolve())
    return url


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True,
                        help="store directory (deltadb) or a SQLAlchemy URL such as sqlite:///f.db")
    parser.add_argument("--key-file", help="file holding the master key "
                        "(default: the DELTADB_MASTER_KEY environment variable)")


def add_commands(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the REST entity server and management UI",
                           description="Serve the DeltaDatabase-compatible REST API and the "
                           f"management UI. Without {ADMIN_KEY_ENV} the server runs in "
                           "development mode: client_id logins, loopback addresses only.")
    _add_store_arguments(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--client-ttl", default="24h", help="token lifetime (e.g. 30m, 24h, 7d)")
    serve.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--forwarded-allow-ips", default="",
                       help="comma-separated addresses (or CIDRs) of reverse proxies whose "
                       "X-Forwarded-For/-Proto headers are trusted; default none, so a "
                       "client's address is always the connection's peer")
    serve.add_argument("--allow-client-id-login", action="store_true",
                       help="development mode only: also accept {\"client_id\": NAME} logins "
                       "from non-browser clients (DeltaDatabase's development clients)")
    serve.add_argument("--grpc-addr", help="also serve DeltaDatabase's gRPC API "
                       "(deltadb.MainWorker) on HOST:PORT, e.g. 127.0.0.1:50051")
    serve.add_argument("--worker-grpc-addr", help="DeltaDatabase's processing-worker port "
                       "(loopback only): Process calls without a token act as the API key in "
                       "DELTADB_GRPC_WORKER_KEY")
    serve.add_argument("--grpc-worker", action="append", default=[], metavar="ID",
                       help="a worker id that may Subscribe without credentials and then acts "
                       "as the API key in DELTADB_GRPC_WORKER_KEY (repeat, or comma-separate)")
    serve.set_defaults(handler=cmd_serve)

    export = sub.add_parser("export", help="write every entity as decrypted JSON lines")
    _add_store_arguments(export)
    export.add_argument("--out", help="file to write (mode 0600); default stdout")
    export.set_defaults(handler=cmd_export)

    imp = sub.add_parser("import", help="read JSON lines written by export into the store")
    _add_store_arguments(imp)
    imp.add_argument("input", nargs="?", default="-", help="file to read; default stdin")
    imp.set_defaults(handler=cmd_import)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from deltadb_dialect.server.app import (
        CONFIG_ENV,
        DEV_TOKEN_ENV,
        GRPC_WORKER_KEY_ENV,
        create_app,
    )
    from deltadb_dialect.server.auth import parse_duration

    admin_key = os.environ.get(ADMIN_KEY_ENV) or None
    if admin_key is None and not is_loopback(args.host):
        print(f"error: development mode (no {ADMIN_KEY_ENV}) serves loopback addresses only; "
              f"set {ADMIN_KEY_ENV} to listen on {args.host}", file=sys.stderr)
        return 2
    url = store_url(args.store, args.key_file)
    try:
        client_ttl = parse_duration(args.client_ttl)
    except ValueError as exc:
        print(f"error: --client-ttl: {exc}", file=sys.stderr)
        return 2
    settings: dict[str, Any] = {
        "engine_url": url,
        "client_ttl": client_ttl,
        "address": f"{args.host}:{args.port}",
        "allow_client_id_login": bool(args.allow_client_id_login),
    }
    grpc_problem = _grpc_settings(args, settings)
    if grpc_problem:
        print(f"error: {grpc_problem}", file=sys.stderr)
        return 2
    # Open the store once before serving, so a wrong key or path fails here with one line.
    probe = create_app(url, admin_key=admin_key, register_worker=False)
    worker_key = os.environ.get(GRPC_WORKER_KEY_ENV)
    valid_worker_key = not worker_key or probe.state.services.auth.resolve_key(
        worker_key, "startup") is not None
    probe.state.services.store.engine.dispose()
    if not valid_worker_key:
        print(f"error: {GRPC_WORKER_KEY_ENV} is not a valid, unexpired API key of this store; "
              "create one with POST /api/keys", file=sys.stderr)
        return 2
    if admin_key is None:
        os.environ[DEV_TOKEN_ENV] = secrets.token_urlsafe(24)
        print(development_banner(os.environ[DEV_TOKEN_ENV], args.allow_client_id_login),
              file=sys.stderr, flush=True)
    print(f"Serving {args.store} on http://{args.host}:{args.port}/ "
          f"({args.workers} worker process(es))", file=sys.stderr, flush=True)
    os.environ[CONFIG_ENV] = json.dumps(settings)
    forwarded = args.forwarded_allow_ips.strip()
    uvicorn.run("deltadb_dialect.server.app:create_app_from_env", factory=True,
                host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level, access_log=False,
                # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told otherwise; here
                # only the proxies named on the command line are trusted.
                proxy_headers=bool(forwarded), forwarded_allow_ips=forwarded or None)
    return 0


def _grpc_settings(args: argparse.Namespace, settings: dict[str, Any]) -> str | None:
    """Put the gRPC options into ``settings``; what is wrong with them, if anything."""
    workers = [w.strip() for item in args.grpc_worker for w in item.split(",") if w.strip()]
    has_key = bool(os.environ.get("DELTADB_GRPC_WORKER_KEY"))
    for option, address in (("--grpc-addr", args.grpc_addr),
                            ("--worker-grpc-addr", args.worker_grpc_addr)):
        if address is not None and not _host_port(address):
            return f"{option} must be HOST:PORT, e.g. 127.0.0.1:50051"
    worker_port = _host_port(args.worker_grpc_addr) if args.worker_grpc_addr else None
    if worker_port is not None:
        if not is_loopback(worker_port[0]):
            return ("--worker-grpc-addr answers calls without a token, so it listens on "
                    "loopback addresses only")
        if not has_key:
            return "--worker-grpc-addr needs DELTADB_GRPC_WORKER_KEY (an API key) to act as"
    if workers and not has_key:
        return "--grpc-worker needs DELTADB_GRPC_WORKER_KEY (an API key) for the workers"
    if workers and not args.grpc_addr:
        return "--grpc-worker needs --grpc-addr (workers subscribe there)"
    settings.update(grpc_addr=args.grpc_addr, worker_grpc_addr=args.worker_grpc_addr,
                    grpc_workers=workers)
    return None


def _host_port(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def development_banner(dev_token: str, client_ids: bool) -> str:
    lines = [f"DeltaDB server in DEVELOPMENT MODE (no {ADMIN_KEY_ENV}): loopback host names "
             "only, and this development token has full rights until the server stops:",
             f"    {dev_token}",
             "Use it as the bearer token, or sign in with it in the management UI."]
    if client_ids:
        lines.append("client_id logins are on (--allow-client-id-login) for non-browser "
                     "clients: anyone on this machine can get full rights with one.")
    lines.append(f"Set {ADMIN_KEY_ENV} for production.")
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    from deltadb_dialect.server.portability import open_store, write_export

    print("warning: the export is DECRYPTED plaintext; keep it as safe as the master key and "
          "delete it when done.", file=sys.stderr)
    store = open_store(store_url(args.store, args.key_file))
    with ExitStack() as stack:
        out: TextIO
        if args.out:
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            out = stack.enter_context(os.fdopen(fd, "w", encoding="utf-8"))
        else:
            out = sys.stdout
        count = write_export(store, out)
    print(f"exported {count} line(s)", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from deltadb_dialect.server.errors import ApiError
    from deltadb_dialect.server.portability import import_lines, open_store

    store = open_store(store_url(args.store, args.key_file))
    with ExitStack() as stack:
        source = sys.stdin if args.input == "-" else stack.enter_context(
            open(args.input, encoding="utf-8"))
        try:
            counts = import_lines(store, source)
        except ApiError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
    print(f"imported {counts['entities']} entities and {counts['schemas']} schemas",
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run only the server's subcommands (useful when the store's own CLI is unavailable)."""
    parser = argparse.ArgumentParser(prog="python -m deltadb_dialect.server.cli")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
