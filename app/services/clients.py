"""API clients (tenants) and their keys.

A key reads ``lb_<key id>_<secret>``. Only the key id (to find the row) and a SHA-256 of
the whole key are stored; the key itself is shown once, when it is made. Keys are random
(256 bits), so a fast hash is enough: there is nothing to brute-force as with a password.
The comparison runs in constant time, also when the key id is unknown.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.db.models import ApiClient
from app.db.repositories import Clients
from app.errors import NotFound, Unauthorized

__all__ = [
    "ClientInfo",
    "RecentKeys",
    "Tenant",
    "authenticate",
    "create_client",
    "list_clients",
    "revoke_client",
]

_KEY = re.compile(r"^lb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# Compared against when the key id is unknown, so a miss costs what a hit costs.
_DUMMY_HASH = hashlib.sha256(b"ladderback: no such key").hexdigest()


@dataclass(frozen=True, slots=True)
class Tenant:
    """The authenticated caller. Every stored resource is scoped by ``client_id``."""

    client_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ClientInfo:
    id: str
    name: str
    key_id: str
    created_at: datetime
    revoked_at: datetime | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _info(client: ApiClient) -> ClientInfo:
    return ClientInfo(client.id, client.name, client.key_id, client.created_at, client.revoked_at)


def create_client(session: Session, name: str, now: datetime) -> tuple[ClientInfo, str]:
    """A new client and its key; the key is returned here and never again."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValueError("a client name has 1 to 100 characters")
    key_id = secrets.token_hex(6)
    key = f"lb_{key_id}_{secrets.token_urlsafe(32)}"
    client = ApiClient(
        id=str(uuid.uuid4()), name=name, key_id=key_id, key_hash=_hash(key), created_at=now
    )
    Clients(session).add(client)
    return _info(client), key


def list_clients(session: Session) -> list[ClientInfo]:
    return [_info(c) for c in Clients(session).all()]


def revoke_client(session: Session, client_id_or_key_id: str, now: datetime) -> ClientInfo:
    clients = Clients(session)
    client = clients.get(client_id_or_key_id) or clients.by_key_id(client_id_or_key_id)
    if client is None:
        raise NotFound(f"no client {client_id_or_key_id!r}")
    if client.revoked_at is None:
        client.revoked_at = now
    return _info(client)


def authenticate(session: Session, presented: str | None) -> Tenant:
    """The tenant a presented key belongs to; ``Unauthorized`` when missing, wrong or revoked."""
    if not presented:
        raise Unauthorized("Send an API key: 'Authorization: Bearer <key>' or 'X-API-Key'.")
    match = _KEY.match(presented)
    client = Clients(session).by_key_id(match.group(1)) if match else None
    expected = client.key_hash if client is not None else _DUMMY_HASH
    if not hmac.compare_digest(_hash(presented), expected) or client is None:
        raise Unauthorized("The API key is not valid.")
    if client.revoked_at is not None:
        raise Unauthorized("The API key has been revoked.")
    return Tenant(client.id, client.name)


class RecentKeys:
    """Keys that checked out in the last few seconds, with their tenant.

    Most requests then authenticate without a database read (a read and two thread hops
    per request were a fifth of a stateless request's time). The price: a key revoked
    elsewhere keeps working here for up to ``seconds``. Only the keys' hashes are held, and
    failures are never remembered.
    """

    def __init__(self, seconds: float, max_keys: int = 10_000) -> None:
        self.seconds = seconds
        self.max_keys = max_keys
        self._known: dict[str, tuple[Tenant, datetime]] = {}

    def tenant_for(self, presented: str | None, now: datetime) -> Tenant | None:
        if not presented or self.seconds <= 0:
            return None
        found = self._known.get(_hash(presented))
        if found is None:
            return None
        tenant, checked_at = found
        # A clock that moved backwards also forgets: the entry's age is unknown.
        if not 0 <= (now - checked_at).total_seconds() < self.seconds:
            return None
        return tenant

    def remember(self, presented: str, tenant: Tenant, now: datetime) -> None:
        if self.seconds <= 0:
            return
        if len(self._known) >= self.max_keys:
            self._known.clear()  # rare: this many distinct keys within seconds
        self._known[_hash(presented)] = (tenant, now)
