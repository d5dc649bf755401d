"""Fuzz the published contract with schemathesis, in-process, with every check it has.

- ``test_every_operation``: per operation, schemathesis' examples, coverage and fuzzing
  phases, positive and negative data, authenticated as tenant A.
- ``test_stateful_sequences``: the state machine that follows the OpenAPI links
  (``app.api.openapi_links``): create a user, open an episode, log a session, ask for a
  recommendation, replay it, erase the user...
- ``test_another_tenant_gets_404_on_every_user_operation``: tenant A's real user, episode,
  session and recommendation, asked for by tenant B through every ``{user_id}`` operation.

On top of schemathesis' own checks, ``tenant_isolation`` runs on every response of the first
two: each successful tenant-A call on a ``{user_id}`` path is replayed with tenant B's key,
and must answer exactly what a missing user answers (404), never a success.

The CDS Hooks operations are called as tenant A's EHR would call them: each request carries
a fresh JWT, signed with a key made here, naming the exact URL called.

The number of cases that ran is printed at the end of the module (in the terminal summary
and as junit test-suite properties).
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlmodel import select
from starlette.types import Receive, Scope, Send

from app.api.deps import get_now
from app.api.openapi_links import add_links
from app.db.models import ApiClient
from app.db.session import Database
from app.main import app as default_app
from app.main import create_app
from app.services.cds_auth import add_issuer
from app.settings import Settings
from tests.builders import condition, new_user, performed_as_prescribed, session
from tests.conftest import TODAY, Clock, new_key

# Budgets: the whole module stays within a few minutes per database.
OPERATION_EXAMPLES = 100  # fuzzing-phase cases per operation (examples and coverage add theirs)
STATEFUL_SCENARIOS = 200
STATEFUL_STEPS = 10
TENANT_PROBES_PER_OPERATION = 10

_USER_IN_PATH = re.compile(r"^/v1/users/([^/]+)")


PUBLIC_URL = "http://contract.test"
EHR_KEY = ec.generate_private_key(ec.SECP384R1())
EHR_JWKS = {
    "keys": [
        {
            **json.loads(jwt.get_algorithm_by_name("ES384").to_jwk(EHR_KEY.public_key())),
            "kid": "contract",
        }
    ]
}


@dataclass
class Run:
    """What the module's tests share with the check and the auth provider (both global)."""

    key_a: str = ""
    key_b: str = ""
    issuer_a: str = ""  # the EHR acting for tenant A
    client: TestClient | None = None
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def active(self) -> bool:
        return self.client is not None


RUN = Run()
CLOCK: list[Clock] = []  # the service clock, once the app fixture has made the app


def _service_now() -> datetime:
    return CLOCK[-1].now if CLOCK else datetime.now(UTC)


class TenantA:
    """schemathesis auth provider: every generated request is tenant A's (explicit auth, so
    the ``ignored_auth`` check also probes each operation without and with a wrong key)."""

    def get(self, _case: schemathesis.Case, _context: schemathesis.AuthContext) -> str:
        return RUN.key_a

    def set(self, case: schemathesis.Case, data: str, _context: schemathesis.AuthContext) -> None:
        if case.operation.path.startswith("/cds-services/"):
            # Cases may be drawn before the fixtures run and are sent later: the EHR's token
            # is signed when the request is sent (``AppUnderTest``), for the URL it goes to.
            data = EHR_TOKEN_WANTED
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


EHR_TOKEN_WANTED = "ehr-token-wanted"


def _hook_token(audience: str) -> str:
    """A JWT from tenant A's EHR for one call to ``audience``."""
    now = int(_service_now().timestamp())
    claims = {
        "iss": RUN.issuer_a,
        "aud": audience,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, EHR_KEY, algorithm="ES384", headers={"kid": "contract"})


def _register_ehr(database: Database, key: str) -> None:
    """Trust a new EHR issuer for the client that owns ``key``."""
    key_id = key.split("_")[1]
    with database.transaction() as session:
        client = session.exec(select(ApiClient).where(ApiClient.key_id == key_id)).one()
        RUN.issuer_a = f"https://ehr.contract.test/{uuid.uuid4().hex}"
        add_issuer(session, client.id, RUN.issuer_a, _service_now(), jwks=EHR_JWKS)


def _as_other_tenant(
    method: str, url: str, body: bytes | str | None, headers: dict[str, str]
) -> tuple[Any, Any]:
    """The same request with tenant B's key: on the real user id, and on a missing one."""
    assert RUN.client is not None
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sent = {
        name: value
        for name, value in headers.items()
        if name.lower() not in ("authorization", "x-api-key", "content-length", "host")
    }
    sent["Authorization"] = f"Bearer {RUN.key_b}"
    content = body.encode() if isinstance(body, str) else body
    theirs = RUN.client.request(method, target, content=content, headers=sent)
    missing = RUN.client.request(
        method,
        _USER_IN_PATH.sub(f"/v1/users/{uuid.uuid4()}", target, count=1),
        content=content,
        headers=sent,
    )
    return theirs, missing


def assert_like_a_missing_user(theirs: Any, missing: Any, what: str) -> None:
    """Another tenant's user answers exactly like a missing one: 404 for a well-formed
    request (a malformed one may be refused first, but then just as for a missing user)."""
    assert not 200 <= theirs.status_code < 300, f"{what}: tenant B got {theirs.status_code}"
    # Tenant B must really be in: a refused key, an exhausted budget or a server error would
    # make both answers alike without testing isolation at all.
    assert missing.status_code not in (401, 403, 429), f"{what}: tenant B was not let in"
    assert missing.status_code < 500, f"{what}: {missing.status_code} {missing.text[:300]}"
    if missing.status_code == 404:
        RUN.counts["tenant B probes answered 404 like a missing user"] += 1
    assert theirs.status_code == missing.status_code, (
        f"{what}: tenant B got {theirs.status_code} for tenant A's user, "
        f"{missing.status_code} for a missing one: {theirs.text[:300]}"
    )
    assert theirs.headers.get("content-type", "").startswith("application/problem+json"), what
    problem, expected = theirs.json(), missing.json()
    assert set(problem) == set(expected), f"{what}: {problem}"
    assert (problem["type"], problem["title"]) == (expected["type"], expected["title"]), what


@schemathesis.check
def tenant_isolation(
    _ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Replay each successful tenant-A call on a ``{user_id}`` path with tenant B's key."""
    if not RUN.active or "{user_id}" not in case.operation.path:
        return None
    if not 200 <= response.status_code < 300:
        return None
    request = response.request
    if request.headers.get("Authorization") != f"Bearer {RUN.key_a}":
        return None
    assert request.method is not None
    assert request.url is not None
    theirs, missing = _as_other_tenant(
        request.method, request.url, request.body, dict(request.headers)
    )
    RUN.counts["tenant B replays of tenant A calls"] += 1
    assert_like_a_missing_user(theirs, missing, f"{request.method} {urlsplit(request.url).path}")
    return True


# Refusals that depend on stored data, the clock or other fields: no JSON Schema can say
# them, so a schema-valid body may meet them. Each is a 422 problem whose every error says
# one of these; any other refusal of schema-valid data still fails the run.
RELATIONAL_RULES = re.compile(
    r"is after today"  # session, episode and history dates against the service's (or body's) today
    r"|is before the onset"  # a session or resolution before its episode began
    r"|unknown exercise"  # exercise ids refer to the catalog, which deployments may replace
    r"|is not one of this user's recommendations"  # a session's recommendation_id, by reference
    r"|an active episode has no resolution date"  # status and resolved_on, together
    r"|was already used for a different request"  # Idempotency-Key reuse (IETF draft: 422)
    r"|is not a card this service issued to you"  # CDS feedback names an issued card
    r"|was not prefetched"  # CDS Hooks 412: an unregistered patient needs the prefetch
    r"|is not a well-formed page cursor"  # a FHIR page's cursor comes from a next link
)


def _only_relational(response: schemathesis.Response) -> bool:
    if response.status_code not in (412, 422):
        return False
    problem = json.loads(response.content)
    messages = [e["message"] for e in problem.get("errors", [])] or [problem.get("detail", "")]
    return all(RELATIONAL_RULES.search(message) for message in messages)


@schemathesis.check
def positive_data_acceptance_but_relational_rules(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """schemathesis' ``positive_data_acceptance``, less the refusals of ``RELATIONAL_RULES``."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if _only_relational(response):
            RUN.counts["schema-valid requests refused by a relational rule (412, 422)"] += 1
            return None
        raise


# ---------------------------------------------------------------------------------------------
# The schema and the fixtures


def _contract() -> dict[str, Any]:
    """The app's own OpenAPI document, with its links.

    Built from the module-level app (its document does not depend on settings); requests go
    to the ``app`` fixture, on the test database, through ``APP``. Not
    ``schemathesis.pytest.from_fixture``: its lazy loader sets ``Node._nodeid``, which pytest
    9.2 no longer has.
    """
    document = copy.deepcopy(default_app.openapi())
    add_links(document)  # idempotent: harmless once app/main.py adds them itself
    return document


class AppUnderTest:
    """The ``app`` fixture, for a schema that has to exist before fixtures do.

    HTTP requests go to the fixture's app. Lifespan events are answered here: the fixture
    has already started its app, and must be the one to stop it.
    """

    target: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": f"{message['type']}.complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        assert self.target is not None, "the contract tests use the `tenants` fixture"
        wanted = f"Bearer {EHR_TOKEN_WANTED}".encode()
        if scope["type"] == "http" and (b"authorization", wanted) in scope["headers"]:
            token = f"Bearer {_hook_token(PUBLIC_URL + scope['path'])}".encode()
            scope = {
                **scope,
                "headers": [
                    (name, token if name == b"authorization" and value == wanted else value)
                    for name, value in scope["headers"]
                ],
            }
        await self.target(scope, receive, send)


APP = AppUnderTest()
schema = schemathesis.openapi.from_dict(_contract())
schema.app = APP
schema.auth(refresh_interval=None)(TenantA)  # the key changes per scenario
# Replaced by `positive_data_acceptance_but_relational_rules`; every other check stays on.
schema.config.checks.positive_data_acceptance.enabled = False
# Sequences follow the published links only. schemathesis' own dependency analysis also links
# `GET /v1/audit-events` `items/*/user_id` to every `{user_id}`, and that field is null for
# user listings: it then sends `/v1/users/None` as "valid" data (a false positive).
schema.config.phases.stateful.inference.algorithms = []


@pytest.fixture(scope="module")
def app(database_url: str, service_clock: Clock) -> Iterator[FastAPI]:
    """The service on the suite's database, with a budget no fuzzer exhausts.

    The service clock stands still (conftest), so the rate limiter's minute never ends: any
    finite budget would turn the rest of the run into 429s. The budget has its own tests.
    """
    application = create_app(
        Settings(database_url=database_url, rate_limit_per_minute=1_000_000, public_url=PUBLIC_URL)
    )
    application.dependency_overrides[get_now] = lambda: service_clock.now
    CLOCK.append(service_clock)
    with TestClient(application):
        yield application


@pytest.fixture(scope="module")
def tenants(app: FastAPI, database: Database) -> Iterator[Run]:
    RUN.key_a = new_key(database, "contract tenant A")
    RUN.key_b = new_key(database, "contract tenant B")
    _register_ehr(database, RUN.key_a)
    RUN.client = TestClient(app)
    for key in (RUN.key_a, RUN.key_b):  # both really authenticate
        assert RUN.client.get("/v1/users", headers={"X-API-Key": key}).status_code == 200
    APP.target = app
    yield RUN
    APP.target = None
    RUN.client = None


@pytest.fixture(scope="module", autouse=True)
def _report_counts(
    request: pytest.FixtureRequest, record_testsuite_property: Any
) -> Iterator[None]:
    yield
    requests = [
        "per-operation cases",
        "stateful calls",
        "tenant B probes of tenant A's resources",
        "tenant B replays of tenant A calls",
    ]
    total = sum(RUN.counts[name] for name in requests)
    lines = [f"schemathesis contract run: {total} cases (requests checked) in all"] + [
        f"  {name}: {count}" for name, count in sorted(RUN.counts.items())
    ]
    for name, count in RUN.counts.items():
        record_testsuite_property(f"schemathesis {name}", count)
    record_testsuite_property("schemathesis requests", total)
    # Shown with or without -s: the counts are the point of the run.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        sys.stdout.write("\n" + "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# (a) Every operation on its own


@schema.parametrize()
@settings(
    max_examples=OPERATION_EXAMPLES,
    deadline=None,
    database=None,
    # `_fresh_clock` (autouse, conftest) resets the clock per test; nothing else is per-test.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.usefixtures("tenants")
def test_every_operation(case: schemathesis.Case) -> None:
    RUN.counts["per-operation cases"] += 1
    response = case.call_and_validate()
    if case.operation.path.startswith("/cds-services/"):
        RUN.counts[f"CDS Hooks calls answered {response.status_code}"] += 1


# ---------------------------------------------------------------------------------------------
# (b) Sequences that follow the links


@pytest.fixture(scope="module")
def state_machine(database: Database) -> Any:
    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Each scenario is a new tenant A: its outcome cannot depend on earlier scenarios
            # (an external_id taken, a day's session limit reached), so Hypothesis can replay
            # a failing sequence and get the same answers.
            RUN.key_a = new_key(database, "contract tenant A, one scenario")
            _register_ehr(database, RUN.key_a)
            RUN.counts["stateful scenarios"] += 1

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            RUN.counts["stateful calls"] += 1

    return Sequences


@pytest.mark.usefixtures("tenants")
def test_stateful_sequences(state_machine: Any) -> None:
    state_machine.run(
        settings=settings(
            state_machine.TestCase.settings,
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            database=None,
        )
    )


# ---------------------------------------------------------------------------------------------
# (c) Tenant B against tenant A's real resources


@pytest.fixture(scope="module")
def tenant_a_world(app: FastAPI, tenants: Run) -> dict[str, str]:
    """A user of tenant A with an episode, a recommendation and a session, made through the API."""
    api = TestClient(app, headers={"Authorization": f"Bearer {tenants.key_a}"})
    user_id = new_user(api, external_id="contract-a", with_condition=condition())
    recommendation = api.post(f"/v1/users/{user_id}/recommendations")
    assert recommendation.status_code == 201, recommendation.text
    done = performed_as_prescribed(recommendation.json()["recommendation"])
    logged = api.post(f"/v1/users/{user_id}/sessions", json=session(day=TODAY, exercises=done))
    assert logged.status_code == 201, logged.text
    return {
        "user_id": user_id,
        "condition_id": logged.json()["condition_id"],
        "session_id": logged.json()["id"],
        "recommendation_id": recommendation.json()["id"],
    }


def _snapshot(app: FastAPI, key: str, world: dict[str, str]) -> list[Any]:
    api = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    base = f"/v1/users/{world['user_id']}"
    paths = [
        base,
        f"{base}/conditions/{world['condition_id']}",
        f"{base}/sessions/{world['session_id']}",
        f"{base}/recommendations/{world['recommendation_id']}",
        f"{base}/sessions",
        f"{base}/recommendations",
        f"{base}/conditions",
    ]
    answers = [api.get(path) for path in paths]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return [a.json() for a in answers]


def _probe_as_tenant_b(operation: Any, fixed: dict[str, str], answered: set[str]) -> None:
    """Schema-valid requests of ``operation`` on tenant A's resources, sent by tenant B."""

    @given(case=operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed))
    @settings(
        max_examples=TENANT_PROBES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def probe(case: schemathesis.Case) -> None:
        sent = case.as_transport_kwargs()
        headers = dict(sent.get("headers") or {})
        body = sent.get("data")
        if "json" in sent:
            body = json.dumps(sent["json"])
            headers.setdefault("Content-Type", "application/json")
        theirs, missing = _as_other_tenant(sent["method"], sent["url"], body, headers)
        RUN.counts["tenant B probes of tenant A's resources"] += 1
        assert_like_a_missing_user(theirs, missing, operation.label)
        if missing.status_code == 404:
            answered.add(operation.label)

    probe()


def test_another_tenant_gets_404_on_every_user_operation(
    app: FastAPI, tenants: Run, tenant_a_world: dict[str, str]
) -> None:
    before = _snapshot(app, tenants.key_a, tenant_a_world)
    operations = [
        result.ok() for result in schema.get_all_operations() if "{user_id}" in result.ok().path
    ]
    # Erasure last: were it to leak, everything after it would pass for the wrong reason.
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")
    answered: set[str] = set()
    for operation in operations:
        fixed = {p.name: tenant_a_world[p.name] for p in operation.path_parameters}
        _probe_as_tenant_b(operation, fixed, answered)
    assert len(operations) >= 14
    # Every operation was probed at least once with a request well-formed enough to get 404.
    assert answered == {operation.label for operation in operations}
    assert _snapshot(app, tenants.key_a, tenant_a_world) == before
