"""Who may call the CDS Hooks service, and the check of each call's token.

An EHR is trusted by registering its JWT issuer (``iss``) with the public half of its keys
(a JWK Set, inline or at a URL it publishes) against one client: its calls then act for
that tenant. Each call carries a JWT the EHR signed (CDS Hooks 2.0, "Trusting CDS
Clients"), and a token passes only if:

- it is signed with ES384 or RS384 (never ``none``, never a shared-secret HMAC), under a
  ``kid`` found in the issuer's key set;
- ``iss`` is registered, and its client is not revoked;
- ``aud`` is exactly the URL of the endpoint called;
- ``exp``, ``iat`` and ``jti`` are present, ``exp`` is not past, ``iat`` is not in the
  future, and the token lives at most ``cds_token_max_seconds``;
- its ``jti`` was never used before: each is remembered until the token expires.

Every refusal is the same 401, with no detail a forger could learn from; the reason goes to
the log (never the token or its claims).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from app.db.cds_repositories import CdsIssuers, CdsTokenUses
from app.db.models import CdsIssuer
from app.errors import NotFound, Unauthorized
from app.services.clients import Tenant

if TYPE_CHECKING:
    import jwt

# PyJWT (and the cryptography it loads) is imported by the functions that use it: only CDS
# Hooks calls need it, and importing it up front added 0.1 s to every worker's start.

__all__ = [
    "ALGORITHMS",
    "IssuerInfo",
    "KeySets",
    "TokenPolicy",
    "add_issuer",
    "claim_token_id",
    "find_issuer",
    "list_issuers",
    "read_hook_token",
    "remove_issuer",
    "verify_signature_and_claims",
]

log = logging.getLogger("ladderback.cds")

# The asymmetric algorithms CDS Hooks recommends; anything else is refused before any key
# is looked at (so no algorithm-confusion trick can pick an HMAC with a public key).
ALGORITHMS = ("ES384", "RS384")
_KEY_TYPES = {"ES384": "EC", "RS384": "RSA"}


@dataclass(frozen=True, slots=True)
class IssuerInfo:
    id: str
    client_id: str
    issuer: str
    jwks_url: str | None
    key_ids: tuple[str, ...]  # of an inline key set; empty for a URL
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    max_lifetime_seconds: int
    clock_skew_seconds: int


class KeySets:
    """The signing keys of registered issuers. Inline sets are read from the database row;
    URL sets are fetched and kept for ``cache_seconds`` (PyJWT's client). A ``kid`` not in
    the kept set makes it fetch again (how an EHR rotates its keys), at most once per
    ``refetch_seconds``, so made-up kids cannot turn us against the EHR's key server."""

    def __init__(self, cache_seconds: int, refetch_seconds: int = 30) -> None:
        self.cache_seconds = max(cache_seconds, 1)
        self.refetch_seconds = refetch_seconds
        self._clients: dict[str, jwt.PyJWKClient] = {}
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def key_for(self, issuer: TrustedIssuer, kid: str) -> jwt.PyJWK | None:
        import jwt

        if issuer.jwks is not None:
            try:
                keys = jwt.PyJWKSet.from_dict(issuer.jwks).keys
            except jwt.PyJWTError:
                return None
            return next((k for k in keys if k.key_id == kid), None)
        url = issuer.jwks_url
        if url is None:
            return None
        with self._lock:
            failed = self._failed_at.get(url)
            if failed is not None and time.monotonic() - failed < self.refetch_seconds:
                return None  # the key server failed just now: do not ask it again yet
            client = self._clients.get(url)
            if client is None:
                client = jwt.PyJWKClient(
                    url,
                    cache_jwk_set=True,
                    lifespan=self.cache_seconds,
                    timeout=5,
                    cooldown_duration=self.refetch_seconds,
                )
                self._clients[url] = client
        try:
            return client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError:
            log.warning("cds key set unreachable")
            with self._lock:
                self._failed_at[url] = time.monotonic()
            return None
        except jwt.PyJWKClientError:
            return None  # the set holds no such kid


def _refuse(reason: str) -> Unauthorized:
    log.info("cds token refused: %s", reason)
    return Unauthorized("The bearer token was refused.")


def _check_key_set(jwks: dict[str, Any]) -> tuple[str, ...]:
    """The key ids of a JWK Set fit for verifying CDS Hooks tokens; ValueError otherwise."""
    import jwt

    try:
        keys = jwt.PyJWKSet.from_dict(jwks).keys
    except jwt.PyJWTError as exc:
        raise ValueError(f"not a usable JWK Set ({exc})") from None
    kids: list[str] = []
    for key in keys:
        if not key.key_id:
            raise ValueError("every key needs a 'kid'")
        if key.key_type not in ("EC", "RSA"):
            raise ValueError(f"key {key.key_id!r} is {key.key_type}: only EC or RSA keys")
        if hasattr(key.key, "private_bytes"):
            raise ValueError(f"key {key.key_id!r} is a private key: register the public half")
        if key.key_type == "RSA" and getattr(key.key, "key_size", 0) < 2048:
            raise ValueError(f"key {key.key_id!r} is RSA under 2048 bits: too weak")
        kids.append(key.key_id)
    return tuple(kids)


def _info(row: CdsIssuer) -> IssuerInfo:
    kids = _check_key_set(row.jwks) if row.jwks is not None else ()
    return IssuerInfo(row.id, row.client_id, row.issuer, row.jwks_url, kids, row.created_at)


def add_issuer(
    session: Session,
    client_id: str,
    issuer: str,
    now: datetime,
    *,
    jwks: dict[str, Any] | None = None,
    jwks_url: str | None = None,
) -> IssuerInfo:
    """Trust ``issuer``'s tokens for client ``client_id``; ValueError explains a refusal."""
    issuer = issuer.strip()
    if not 1 <= len(issuer) <= 255:
        raise ValueError("the issuer must be 1 to 255 characters")
    if (jwks is None) == (jwks_url is None):
        raise ValueError("give the issuer's keys either inline (a JWK Set) or as a URL")
    if jwks is not None:
        _check_key_set(jwks)
    # Keys fetched over plain HTTP could be swapped on the way; only a local server may.
    local = ("http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:", "http://localhost/")
    if jwks_url is not None and not jwks_url.startswith(("https://", *local)):
        raise ValueError("the key set URL must be https (http only for localhost)")
    issuers = CdsIssuers(session)
    if issuers.by_issuer(issuer) is not None:
        raise ValueError(f"issuer {issuer!r} is already registered")
    row = CdsIssuer(
        id=str(uuid.uuid4()),
        client_id=client_id,
        issuer=issuer,
        jwks=jwks,
        jwks_url=jwks_url,
        created_at=now,
    )
    issuers.add(row)
    return _info(row)


def list_issuers(session: Session) -> list[IssuerInfo]:
    return [_info(row) for row in CdsIssuers(session).all()]


def remove_issuer(session: Session, issuer: str) -> None:
    if not CdsIssuers(session).remove(issuer):
        raise NotFound(f"No issuer {issuer!r}.")


def _timestamp(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse(f"{name} is not a number")
    return int(value)


@dataclass(frozen=True, slots=True)
class HookToken:
    """A bearer token read but not yet trusted: what it claims to be and who made it."""

    token: str
    alg: str
    kid: str
    iss: str


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """A registered issuer's keys and the tenant its calls act for."""

    issuer: str
    jwks: dict[str, Any] | None
    jwks_url: str | None
    tenant: Tenant


@dataclass(frozen=True, slots=True)
class TokenUse:
    """A token whose signature and claims passed: its id, kept until it expires."""

    iss: str
    jti: str
    expires_at: datetime


def read_hook_token(authorization: str | None) -> HookToken:
    """The token's header and issuer, before anything is trusted."""
    import jwt

    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _refuse("no bearer token")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _refuse("not a JWT") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise _refuse(f"algorithm {alg!r} is not allowed")
    if str(header.get("typ", "")).upper() != "JWT":
        raise _refuse("typ is not JWT")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refuse("no kid")
    iss = unverified.get("iss")
    if not isinstance(iss, str) or not iss:
        raise _refuse("no iss")
    return HookToken(token, alg, kid, iss)


def find_issuer(session: Session, token: HookToken) -> TrustedIssuer:
    """The registered issuer the token names; refused when unknown or its client revoked."""
    found = CdsIssuers(session).by_issuer(token.iss)
    if found is None:
        raise _refuse("unknown issuer")
    issuer, client = found
    if client.revoked_at is not None:
        raise _refuse("the issuer's client is revoked")
    return TrustedIssuer(
        issuer.issuer, issuer.jwks, issuer.jwks_url, Tenant(client.id, client.name)
    )


def verify_signature_and_claims(
    token: HookToken,
    issuer: TrustedIssuer,
    audiences: Sequence[str],
    now: datetime,
    policy: TokenPolicy,
    key_sets: KeySets,
) -> TokenUse:
    """Check the signature against the issuer's key for ``kid``, then every claim.

    Needs no database (a key set at a URL may be fetched): call it outside a transaction.
    """
    import jwt

    key = key_sets.key_for(issuer, token.kid)
    if key is None or key.key_type != _KEY_TYPES[token.alg]:
        raise _refuse("no matching key for kid")
    try:
        claims: dict[str, Any] = jwt.decode(
            token.token,
            key.key,
            algorithms=[token.alg],
            audience=list(audiences),
            issuer=issuer.issuer,
            leeway=policy.clock_skew_seconds,
            # Times are checked below against the service's clock, not PyJWT's own.
            options={
                "require": ["iss", "aud", "exp", "iat", "jti"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidAudienceError:
        raise _refuse("aud is not this endpoint") from None
    except jwt.PyJWTError as exc:
        raise _refuse(type(exc).__name__) from None
    exp, iat = _timestamp(claims, "exp"), _timestamp(claims, "iat")
    current = int(now.timestamp())
    skew = policy.clock_skew_seconds
    if exp < current - skew:
        raise _refuse("expired")
    if iat > current + skew:
        raise _refuse("issued in the future")
    if "nbf" in claims and _timestamp(claims, "nbf") > current + skew:
        raise _refuse("not valid yet")
    if exp - iat > policy.max_lifetime_seconds:
        raise _refuse("lives too long")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 255:
        raise _refuse("jti is not a string of 1 to 255 characters")
    return TokenUse(issuer.issuer, jti, datetime.fromtimestamp(exp + skew, UTC))


def claim_token_id(session: Session, use: TokenUse, now: datetime) -> None:
    """Record the token's ``jti``; a second use of it is refused. Commit this even if the
    call then fails, or a replay would pass."""
    if not CdsTokenUses(session).first_use(use.iss, use.jti, use.expires_at, now):
        raise _refuse("jti replayed")
