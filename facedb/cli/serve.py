"""The ``facedb`` commands of the HTTP service: serve (the gallery over HTTP) and keys (its
API keys)."""

from __future__ import annotations

import argparse
import json
import sys

from facedb import serialize
from facedb.cli.common import Commands, _local, _open_db, _print_table
from facedb.errors import ConfigError

commands = Commands()


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a request's headers may take, and the window in which a body must bring "
        "1 KiB (default 10): slower clients are disconnected",
    )
    p.add_argument(
        "--max-connections-per-address",
        type=int,
        default=256,
        help="connections one client address may hold open at once; more are closed at once "
        "(default 256; the --trusted-proxy addresses are not bounded)",
    )
    p.add_argument(
        "--session-idle-minutes",
        type=float,
        default=30.0,
        help="a web-page session unused this long ends (default 30)",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a reverse proxy whose X-Forwarded-For and X-Forwarded-Proto are believed (repeatable; "
        "default: none, so no client can choose the address the failed-key limit counts)",
    )
    p.add_argument("--max-upload-mb", type=int, default=20, help="largest photo upload (default 20 MB)")
    p.add_argument("--max-photos", type=int, default=20, help="most photos in one request (default 20)")
    p.add_argument(
        "--max-request-mb",
        type=int,
        default=None,
        help="largest request body (default: max-photos x max-upload-mb + 1 MB)",
    )
    p.add_argument(
        "--auth-failures",
        type=int,
        default=10,
        help="failed API keys from one address before it is refused for a while (default 10)",
    )
    p.add_argument(
        "--auth-window", type=float, default=60.0, help="seconds those failures are counted over (default 60)"
    )
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=None,
        help=(
            "share recognizer batches between identify requests, held open this long for "
            "more (0: only the requests queued meanwhile; default: off, each request alone)"
        ),
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="threads for decoding, detection and enrollment (default: one per core)",
    )
    p.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )


#: Libraries whose info lines only their debugging needs: shown with --log-level debug only.
_CHATTY_LOGGERS = ("alembic", "faiss")


@commands.add(
    "serve", "serve the gallery over HTTP: a web page at /, the API (OpenAPI at /docs)", _serve_arguments
)
def cmd_serve(args: argparse.Namespace) -> int:
    """``facedb serve``."""
    import logging

    from facedb.extras import require

    require("service", "facedb serve")
    import uvicorn

    from facedb.logs import EscapingFormatter
    from facedb.service.deadlines import protocol, raise_open_files

    # The service logs what an error answer leaves out (the exception, with the request id).
    # Escaped: a path, header or name is the client's, and must not forge a line of its own.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    if args.log_level != "debug":
        # Their info lines are for whoever debugs them: alembic's 'Context impl SQLiteImpl.' at
        # every start, and faiss's loader trying its builds in turn ('Could not load library
        # with AVX512 support' before the one that loads), which read as failures.
        for chatty in _CHATTY_LOGGERS:
            logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))

    from facedb.keys import KeyStore
    from facedb.service import ServiceSettings, create_app

    db = _open_db(args)
    if not any(k.revoked_at is None for k in KeyStore(db.store).list()):
        print(
            f"facedb: warning: {db.location} has no API key: every request but /health and /docs "
            f"will be refused (401); create one with `facedb --db {db.location} keys create --scope read`",
            file=sys.stderr,
        )
    settings = ServiceSettings(
        max_upload_bytes=args.max_upload_mb * 1024 * 1024,
        max_photos=args.max_photos,
        max_request_bytes=None if args.max_request_mb is None else args.max_request_mb * 1024 * 1024,
        auth_failures=args.auth_failures,
        auth_window_seconds=args.auth_window,
        batch_window_ms=args.batch_window_ms,
        workers=args.workers,
        session_idle_minutes=args.session_idle_minutes,
    )
    url = f"http://{args.host}:{args.port}"
    print(
        f"facedb: serving {db.location}: the web page at {url}/, the API's docs at {url}/docs",
        file=sys.stderr,
    )
    try:
        if not 0 < args.header_timeout <= 3600:
            raise ConfigError(
                f"--header-timeout must be above 0 and at most 3600 s, got {args.header_timeout}"
            )
        if args.max_connections_per_address < 1:
            raise ConfigError(
                f"--max-connections-per-address must be at least 1, got {args.max_connections_per_address}"
            )
        # Hundreds of idle sockets must not exhaust the descriptors before the deadline ends them.
        raise_open_files()
        uvicorn.run(
            create_app(db, settings),
            http=protocol(
                headers_seconds=args.header_timeout,
                body_window=args.header_timeout,
                max_per_address=args.max_connections_per_address,
                unbounded=frozenset(args.trusted_proxy),
            ),
            # asyncio's own loop, whose accept errors facedb.service.deadlines quiets (uvloop,
            # when installed, would be chosen otherwise and handles them its own way).
            loop="asyncio",
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            workers=1,
            # facedb.access logs each request instead (with the key's name and request id).
            access_log=False,
            # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: forty wrong keys with
            # a rotating header were never limited. Only the proxies the operator names.
            proxy_headers=bool(args.trusted_proxy),
            forwarded_allow_ips=",".join(args.trusted_proxy) or None,
            # uvicorn's loggers go through the logging set up above (stderr, one format),
            # instead of its own config, which sends the access log to stdout.
            log_config=None,
        )
    finally:
        db.close()
    return 0


def _keys_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("id", nargs="?", type=int, help="the key to revoke")
    p.add_argument("--scope", default="read", choices=["read", "enroll", "admin"])
    p.add_argument("--name", help="a label for the key")
    p.add_argument("--json", action="store_true", help="print JSON (keys list)")


@commands.add("keys", "create, list or revoke HTTP API keys", _keys_arguments)
def cmd_keys(args: argparse.Namespace) -> int:
    """``facedb keys create|list|revoke [ID]``."""
    from facedb.keys import KeyStore

    # A service is set up with a key before anybody is enrolled: `keys create` may create the
    # gallery (a typo there cannot name anybody: the key exists only in the new gallery).
    with _open_db(args, create=args.action == "create") as db:
        keys = KeyStore(db.store)
        if args.action == "create":
            record, secret = keys.create(args.scope, args.name or "")
            print(secret)
            print(f"created key {record.id} ({record.scope}); it is shown only now", file=sys.stderr)
        elif args.action == "list":
            listed = keys.list()
            if args.json:
                print(json.dumps([serialize.key_json(k) for k in listed], indent=2))
                return 0
            rows = [["ID", "NAME", "PREFIX", "SCOPE", "CREATED", "REVOKED"]]
            for k in listed:
                rows.append(
                    [
                        str(k.id),
                        k.name,
                        k.prefix + "...",
                        k.scope,
                        _local(k.created_at),
                        _local(k.revoked_at) if k.revoked_at else "",
                    ]
                )
            _print_table(rows, sys.stdout)
        else:
            if args.id is None:
                raise ConfigError("keys revoke needs the key's id")
            record = keys.revoke(args.id)
            print(f"revoked key {record.id} ({record.name or record.prefix})")
    return 0
