"""RestApi's own rules, on a stand-in transport (no API server needed)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pythonapp_operator.controller.client import ApiError, RestApi


class _Response:
    status = 200

    def read(self) -> bytes:
        return b"{}"


class _Transport:
    """The official client's two calls RestApi makes; counts requests in flight."""

    def __init__(self) -> None:
        self.rest_client = self
        self.user_agent = ""
        self.lock = threading.Lock()
        self.now = self.most = self.calls = 0

    def param_serialize(self, **kw: Any) -> tuple[str, str, dict[str, str], None, None]:
        return kw["method"], "https://api" + kw["resource_path"], kw["header_params"], None, None

    def request(self, *args: Any, **kw: Any) -> _Response:
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)  # a slow API server: without a limit, every thread is in flight
        with self.lock:
            self.now -= 1
        return _Response()


def test_requests_in_flight_never_exceed_the_limit_whatever_the_threads() -> None:
    transport = _Transport()
    api = RestApi(transport, max_in_flight=2)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: api.request("GET", "/version"), range(8)))
    assert results == [(200, b"{}")] * 8
    assert transport.calls == 8
    assert transport.most <= 2


def test_a_transport_failure_is_an_api_error_with_status_0() -> None:
    transport = _Transport()

    def refuse(*args: Any, **kw: Any) -> _Response:
        raise OSError("connection refused")

    transport.request = refuse  # type: ignore[method-assign]
    api = RestApi(transport, max_in_flight=1)
    try:
        api.request("GET", "/version")
    except ApiError as err:
        assert err.status == 0 and "connection refused" in err.message
    else:
        raise AssertionError("no ApiError")
    # the permit was given back: the next request is not stuck
    transport.request = _Transport().request  # type: ignore[method-assign]
    assert api.request("GET", "/version")[0] == 200
