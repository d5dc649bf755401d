"""The interactive docs work offline, checked in a real browser.

Clinic networks often block CDNs, so Swagger UI (``/docs``) and ReDoc (``/redoc``) must be
served by the service itself. The real service runs as a subprocess; Debian's headless
Chromium (``/usr/bin/chromium``, which ``.ci/run`` installs) loads each page on a network
where no host but the service resolves, as in such a clinic, and:

- the rendered Swagger UI lists every operation (method, path, summary), offers
  "Authorize" and says how to send the API key;
- the rendered ReDoc shows the API title and lists every operation;
- neither the server's HTML nor anything the page requested while rendering (read from
  Chromium's network log) points anywhere but the service.

A missing Chromium fails these tests; it never skips them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.service import Server, running_service, stop_process_group

BROWSER_TIMEOUT = 60.0
PAGES = ["/docs", "/redoc"]

# Named in the issue: these must be listed, whatever else is.
REQUIRED_OPERATIONS = {
    "create_user",
    "log_session",
    "create_user_recommendation",
    "create_stateless_recommendation",
}
REQUIRED_PATH = "/v1/users/{user_id}/recommendations"
REQUIRED_SUMMARY = "Decide the next session from a self-contained request"


# ---------------------------------------------------------------------------------------------
# A small DOM: Chromium's --dump-dom output, parsed with the standard library.

VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)
# Attributes that make the browser fetch (or navigate to) a URL.
URL_ATTRIBUTES = frozenset(
    {"src", "href", "srcset", "spec-url", "action", "formaction", "data", "poster"}
    | {"background", "manifest"}
)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, predicate: Callable[[Element], bool]) -> list[Element]:
        return [e for e in self.iter() if predicate(e)]

    def with_class(self, name: str) -> list[Element]:
        return self.find_all(lambda e: name in e.classes)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID_TAGS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def squash(text: str) -> str:
    """Whitespace collapsed, as a reader sees it (markdown keeps the source's line breaks)."""
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# The service


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service, one worker, on a database of its own."""
    with running_service(tmp_path_factory.mktemp("docs")) as service:
        yield service


@pytest.fixture(scope="module")
def openapi(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.origin}/openapi.json", timeout=10.0)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
    ]


# ---------------------------------------------------------------------------------------------
# The browser


@dataclass(frozen=True)
class Rendered:
    url: str
    dom: Element
    requests: list[tuple[str, str]]  # (initiator, url) of every request the browser started
    stderr: str


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        pytest.fail(
            "Chromium is missing: the docs tests need Debian's `chromium` at /usr/bin/chromium."
            " `.ci/run` installs it; by hand: `apt-get update && apt-get install -y chromium`.",
            pytrace=False,
        )
    return path


def _netlog_requests(netlog: Path) -> list[tuple[str, str]]:
    """(initiator, url) of each URL request in a Chromium network log (--log-net-log)."""
    text = netlog.read_text(errors="replace").rstrip()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:
        # A log cut short lacks its closing brackets (and may end in a comma).
        log = json.loads(text.rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        (str(event["params"].get("initiator", "")), str(event["params"]["url"]))
        for event in log["events"]
        if event["type"] == start_job and "url" in event.get("params", {})
    ]


@pytest.fixture(scope="module")
def render(
    chromium: str, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Rendered]:
    """Load a page of the service in headless Chromium; the DOM once its scripts have run."""
    cache: dict[str, Rendered] = {}

    def load(path: str) -> Rendered:
        if path in cache:
            return cache[path]
        folder = tmp_path_factory.mktemp("chromium")
        netlog = folder / "netlog.json"
        url = server.origin + path
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={folder / 'profile'}",
            # A clinic network: nothing resolves but the service itself.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--log-net-log={netlog}",
            "--dump-dom",
            "--virtual-time-budget=15000",
            url,
        ]
        with subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own group: no helper process outlives it
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=BROWSER_TIMEOUT)
            except subprocess.TimeoutExpired:
                stop_process_group(process)
                pytest.fail(f"Chromium did not render {url} in {BROWSER_TIMEOUT:.0f} s")
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        errors = stderr.decode(errors="replace")
        dom = stdout.decode(errors="replace")
        assert process.returncode == 0, f"Chromium exited {process.returncode}:\n{errors}"
        assert "</html>" in dom, f"Chromium dumped no page for {url}:\n{errors}"
        assert netlog.is_file(), f"Chromium wrote no network log:\n{errors}"
        cache[path] = Rendered(url, parse_html(dom), _netlog_requests(netlog), errors)
        return cache[path]

    return load


# ---------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("path", PAGES)
def test_the_served_html_points_only_at_the_service(server: Server, path: str) -> None:
    response = httpx.get(server.origin + path, timeout=10.0)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    base = server.origin + path
    references = [
        value
        for element in parse_html(page).iter()
        for name, value in element.attrs.items()
        if name in URL_ATTRIBUTES and value
    ]
    # The page's assets are referenced, and every reference resolves to the service.
    assert any("static-offline-docs" in r for r in references), references
    foreign = [
        r
        for r in references
        for candidate in re.split(r",\s+", r)  # srcset lists several, each "url [size]"
        if candidate.strip()
        and not _same_origin(urljoin(base, candidate.split()[0]), server.origin)
    ]
    assert foreign == [], f"{path} references other origins: {foreign}"
    # Nor does any inline script or style name another origin (a CDN bundle, a web font).
    absolute = re.findall(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>)]+", page, flags=re.IGNORECASE)
    names = ("http://www.w3.org/",)  # XML namespaces (inline SVG) are names, never fetched
    assert [
        u for u in absolute if not _same_origin(u, server.origin) and not u.startswith(names)
    ] == []


def _same_origin(url: str, origin: str) -> bool:
    parts, expected = urlsplit(url), urlsplit(origin)
    return (parts.scheme, parts.netloc) == (expected.scheme, expected.netloc)


@pytest.mark.parametrize("path", PAGES)
def test_the_rendered_page_requests_nothing_from_another_origin(
    render: Callable[[str], Rendered], server: Server, path: str
) -> None:
    rendered = render(path)
    # What the page itself asked for (Chromium's own update or account pings aside).
    requested = [url for initiator, url in rendered.requests if initiator == server.origin]
    # The log did record the page's loads: its bundle and the OpenAPI document.
    assert f"{server.origin}/openapi.json" in requested, rendered.requests
    assert any("/static-offline-docs/" in url for url in requested), rendered.requests
    foreign = sorted({url for url in requested if not _same_origin(url, server.origin)})
    assert foreign == [], (
        f"{path}, rendered, requested other origins (blocked on a clinic network): {foreign}"
    )


def test_swagger_ui_lists_every_operation(
    render: Callable[[str], Rendered], openapi: dict[str, Any]
) -> None:
    rendered = render("/docs")
    dom = rendered.dom
    blocks = {
        e.attrs["id"].rsplit("-", 1)[-1]: e
        for e in dom.with_class("opblock")
        if e.attrs.get("id", "").startswith("operations-")
    }
    assert blocks, f"Swagger UI rendered no operation:\n{rendered.stderr}"
    operations = _operations(openapi)
    assert {op["operationId"] for _, _, op in operations} >= REQUIRED_OPERATIONS

    for path, method, operation in operations:
        block = blocks.get(operation["operationId"])
        assert block is not None, f"{method.upper()} {path} is not listed in /docs"
        methods = [squash(e.text()) for e in block.with_class("opblock-summary-method")]
        paths = [e.attrs.get("data-path") for e in block.with_class("opblock-summary-path")]
        summaries = [squash(e.text()) for e in block.with_class("opblock-summary-description")]
        assert methods == [method.upper()], (path, method, methods)
        assert paths == [path], (path, method, paths)
        assert summaries == [squash(operation["summary"])], (path, method, summaries)
        # A secured operation carries its padlock (Swagger's per-operation authorize button).
        locks = block.with_class("authorization__btn")
        secured = operation.get("security", openapi.get("security"))
        assert bool(locks) == bool(secured), (path, method)

    assert blocks.keys() >= REQUIRED_OPERATIONS
    rendered_paths = {e.attrs.get("data-path") for e in dom.with_class("opblock-summary-path")}
    assert REQUIRED_PATH in rendered_paths
    descriptions = {squash(e.text()) for e in dom.with_class("opblock-summary-description")}
    assert REQUIRED_SUMMARY in descriptions


def test_swagger_ui_shows_how_to_authenticate(render: Callable[[str], Rendered]) -> None:
    dom = render("/docs").dom
    buttons = [squash(e.text()) for e in dom.find_all(lambda e: e.tag == "button")]
    assert "Authorize" in buttons, "no Authorize button: the OpenAPI has no security schemes?"
    description = " ".join(squash(e.text()) for e in dom.with_class("info__description"))
    assert "API key" in description, description
    assert "Authorization: Bearer" in description, description


def test_redoc_renders_the_title_and_every_operation(
    render: Callable[[str], Rendered], openapi: dict[str, Any]
) -> None:
    dom = render("/redoc").dom
    headings = [squash(e.text()) for e in dom.find_all(lambda e: e.tag == "h1")]
    info = openapi["info"]
    assert f"{info['title']} ({info['version']})" in headings, headings
    menu = {
        e.attrs["data-item-id"].rsplit("/", 1)[-1]: e.attrs.get("aria-label")
        for e in dom.find_all(lambda e: "/operation/" in e.attrs.get("data-item-id", ""))
    }
    for path, method, operation in _operations(openapi):
        assert menu.get(operation["operationId"]) == operation["summary"], (path, method)
    assert menu.keys() >= REQUIRED_OPERATIONS
    assert REQUIRED_SUMMARY in menu.values()
