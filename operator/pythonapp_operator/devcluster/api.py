"""A minimal HTTPS client for the few calls the harness itself makes.

Readiness polling, node creation and the Ready check run before any ``kubernetes`` client is
configured and must stay cheap (``status`` uses them), so they go through ``urllib`` with the
admin client certificate. Component health endpoints use their own self-signed certificates and
are probed without verification: they are on loopback and only report liveness.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def admin_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """TLS context that verifies the API server and presents the admin certificate."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def request(
    url: str,
    ctx: ssl.SSLContext | None = None,
    method: str = "GET",
    body: Any = None,
    timeout: float = 5.0,
    *,
    content_type: str = "application/json",
) -> tuple[int, str]:
    """(status, body text). Connection failures come back as status 0 with the reason."""
    data = None if body is None else json.dumps(body).encode()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (checked above)
    if data is not None:
        req.add_header("Content-Type", content_type)
    if ctx is None and url.startswith("https:"):
        ctx = _insecure()
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:  # noqa: S310
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        return 0, str(reason)
