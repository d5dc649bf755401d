"""The container's health check: ``python -m app.healthcheck`` exits 0 when ``/healthz``
answers 200 on this host, 1 otherwise.

Standard library only: it runs every few seconds, and slim images have no curl. It probes
liveness, not readiness, so a database outage does not get healthy containers replaced.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3.0


def main() -> int:
    port = os.environ.get("LADDERBACK_PORT") or os.environ.get("PORT") or "8000"
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
