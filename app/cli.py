"""The ``ladderback`` command: API clients, the database schema, and serving.

    ladderback clients create NAME     make a client; prints its key once
    ladderback clients list            every client, with its key id (never the key)
    ladderback clients revoke ID       revoke by client id or key id
    ladderback cds-issuers add CLIENT_ID ISSUER (--jwks-file FILE | --jwks-url URL)
                                       trust an EHR's CDS Hooks tokens for a client
    ladderback cds-issuers list        every trusted issuer, its client and key ids
    ladderback cds-issuers remove ISSUER
    ladderback db upgrade              migrate the database to the newest schema
    ladderback serve                   migrate, then serve (the container's command)

The database is the one ``DATABASE_URL`` names, as for the service.
"""

from __future__ import annotations

import argparse
import json
import logging.config
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from app.db.schema import migrate
from app.db.session import Database, Session
from app.errors import NotFound
from app.logs import logging_config
from app.services.cds_auth import add_issuer, list_issuers, remove_issuer
from app.services.clients import create_client, list_clients, revoke_client
from app.settings import Settings, get_settings

__all__ = ["main", "migrate", "serve"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ladderback", description=__doc__.split("\n")[0])
    groups = parser.add_subparsers(dest="group", required=True)
    clients = groups.add_parser("clients", help="API clients (tenants) and their keys")
    actions = clients.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a client; prints its key once")
    create.add_argument("name")
    actions.add_parser("list", help="every client, with its key id")
    revoke = actions.add_parser("revoke", help="revoke a client's key")
    revoke.add_argument("id", help="client id or key id")
    issuers = groups.add_parser("cds-issuers", help="EHRs trusted to call the CDS Hooks service")
    issuer_actions = issuers.add_subparsers(dest="action", required=True)
    add = issuer_actions.add_parser("add", help="trust an issuer's tokens for a client")
    add.add_argument("client_id", help="the client (tenant) its calls act for")
    add.add_argument("issuer", help="the `iss` its tokens carry")
    keys = add.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks-file", type=Path, help="its public JWK Set, as a JSON file")
    keys.add_argument("--jwks-url", help="where it publishes its public JWK Set")
    issuer_actions.add_parser("list", help="every trusted issuer")
    remove = issuer_actions.add_parser("remove", help="stop trusting an issuer")
    remove.add_argument("issuer")
    db = groups.add_parser("db", help="the database schema")
    db_actions = db.add_subparsers(dest="action", required=True)
    db_actions.add_parser("upgrade", help="migrate to the newest schema")
    groups.add_parser(
        "serve",
        help="migrate (unless LADDERBACK_MIGRATE_ON_START=false), then serve with "
        "LADDERBACK_WORKERS processes on LADDERBACK_HOST:LADDERBACK_PORT",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    url = get_settings().database_url
    if args.group == "serve":
        return serve(get_settings())
    if args.group == "db":
        migrate(url)
        return 0
    now = datetime.now(UTC)
    database = Database(url)
    try:
        with database.transaction() as session:
            if args.group == "cds-issuers":
                return _cds_issuers(session, args, now)
            if args.action == "create":
                try:
                    info, key = create_client(session, args.name, now)
                except ValueError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 2
                print(f"client {info.id} ({info.name}), key id {info.key_id}")
                print("API key (shown once, keep it secret):")
                print(key)
            elif args.action == "list":
                for c in list_clients(session):
                    state = f"revoked {c.revoked_at:%Y-%m-%d}" if c.revoked_at else "active"
                    print(f"{c.id}  {c.key_id}  {state:<18}  {c.name}")
            else:
                try:
                    info = revoke_client(session, args.id, now)
                except NotFound as exc:
                    print(f"error: {exc.detail}", file=sys.stderr)
                    return 1
                print(f"revoked client {info.id} ({info.name})")
    finally:
        database.dispose()
    return 0


def _cds_issuers(session: Session, args: argparse.Namespace, now: datetime) -> int:
    if args.action == "list":
        for i in list_issuers(session):
            keys = i.jwks_url or ("keys " + ", ".join(i.key_ids))
            print(f"{i.issuer}  client {i.client_id}  {keys}")
        return 0
    if args.action == "remove":
        try:
            remove_issuer(session, args.issuer)
        except NotFound as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 1
        print(f"removed issuer {args.issuer}")
        return 0
    if not any(c.id == args.client_id for c in list_clients(session)):
        print(f"error: no client {args.client_id!r}", file=sys.stderr)
        return 1
    try:
        jwks = json.loads(args.jwks_file.read_text()) if args.jwks_file else None
        info = add_issuer(
            session, args.client_id, args.issuer, now, jwks=jwks, jwks_url=args.jwks_url
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"issuer {info.issuer} now acts for client {info.client_id}")
    return 0


# Seconds a stopping worker waits for requests in flight (container stops allow about 10).
GRACEFUL_SHUTDOWN_SECONDS = 8
METRICS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"
# Named, not imported: each worker process imports it.
EDGE_PROTOCOL = "app.edge:EdgeProtocol"


def serve(settings: Settings) -> int:
    """Migrate, then serve until stopped: what the container image runs."""
    logging.config.dictConfig(logging_config(settings.log_level))
    if settings.migrate_on_start:
        migrate(settings.database_url)
    # Each worker counts into files of this folder; a scrape of any worker adds them up.
    # Counts of an earlier run must not leak in, so the folder starts empty.
    made = METRICS_FOLDER not in os.environ and settings.workers > 1
    if made:
        os.environ[METRICS_FOLDER] = tempfile.mkdtemp(prefix="ladderback-metrics-")
    elif METRICS_FOLDER in os.environ:
        for stale in Path(os.environ[METRICS_FOLDER]).glob("*.db"):
            stale.unlink()
    try:
        uvicorn.run(
            "app.main:app",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=logging_config(settings.log_level),
            access_log=False,  # replaced by one JSON line a request (app.telemetry)
            proxy_headers=True,
            # No proxy listed: the connection's own address is the client's.
            forwarded_allow_ips=settings.forwarded_allow_ips or "",
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            # uvicorn's httptools protocol with size, time and connection limits.
            http=EDGE_PROTOCOL,
            ws="none",  # no WebSocket route: upgrades are answered as plain HTTP
            timeout_keep_alive=settings.keep_alive_seconds,
        )
    finally:
        if made:
            shutil.rmtree(os.environ.pop(METRICS_FOLDER), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
