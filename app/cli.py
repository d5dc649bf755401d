"""The ``ladderback`` command: API clients and the database schema.

    ladderback clients create NAME     make a client; prints its key once
    ladderback clients list            every client, with its key id (never the key)
    ladderback clients revoke ID       revoke by client id or key id
    ladderback db upgrade              migrate the database to the newest schema

The database is the one ``DATABASE_URL`` names, as for the service.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.db.session import Database
from app.errors import NotFound
from app.services.clients import create_client, list_clients, revoke_client
from app.settings import get_settings

__all__ = ["main", "migrate"]

ROOT = Path(__file__).resolve().parent.parent


def migrate(url: str, revision: str = "head") -> None:
    """``alembic upgrade`` on ``url``, with the project's own migration scripts."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    command.upgrade(config, revision)


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
    db = groups.add_parser("db", help="the database schema")
    db_actions = db.add_subparsers(dest="action", required=True)
    db_actions.add_parser("upgrade", help="migrate to the newest schema")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    url = get_settings().database_url
    if args.group == "db":
        migrate(url)
        return 0
    now = datetime.now(UTC)
    database = Database(url)
    try:
        with database.transaction() as session:
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


if __name__ == "__main__":
    sys.exit(main())
