"""The security headers every answer carries, built once with ``secure``'s builders.

``secure`` gives reviewed, validated header values and policy builders; its own middleware
applies one policy to every path, while the docs pages need a looser Content-Security-Policy
than the API, so the service's request middleware (``app.main.RequestContext``) adds these
precomputed pairs itself, and the handler of unexpected failures (which answers outside the
middleware) adds them too.
"""

from __future__ import annotations

import secure

__all__ = ["API_HEADERS", "DOCS_HEADERS"]


def _security_headers(csp: secure.ContentSecurityPolicy) -> tuple[tuple[str, str], ...]:
    policy = secure.Secure(
        csp=csp.frame_ancestors("'none'"),
        xcto=secure.XContentTypeOptions().nosniff(),
        referrer=secure.ReferrerPolicy().no_referrer(),
        xfo=secure.XFrameOptions().deny(),
        # Ignored by browsers over plain HTTP; behind TLS it keeps them on HTTPS.
        hsts=secure.StrictTransportSecurity().max_age(31_536_000),
    )
    return tuple(policy.headers.items())


# An API answer is data, never a page: it may load nothing and be framed nowhere.
API_HEADERS = _security_headers(secure.ContentSecurityPolicy().default_src("'none'"))
# The docs pages may load nothing from elsewhere: ReDoc's bundle still names a CDN logo.
DOCS_HEADERS = _security_headers(
    secure.ContentSecurityPolicy()
    .default_src("'self'")
    .script_src("'self'", "'unsafe-inline'")
    .style_src("'self'", "'unsafe-inline'")
    .img_src("'self'", "data:")
    .font_src("'self'", "data:")
    .worker_src("'self'", "blob:")
    .connect_src("'self'")
)
