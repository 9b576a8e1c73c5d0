"""RestApi's own rules, on a stand-in transport (no API server needed)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from pythonapp_operator.controller.client import ApiError, RestApi, apply_body


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


def test_an_apply_without_a_uid_is_create_only_and_with_one_is_pinned_to_it() -> None:
    """What keeps the operator off anyone else's object is in the body it sends: a child the
    cache does not hold goes out with resourceVersion "1" (create-only on the API server, see
    CREATE_ONLY and its e2e test), a cached one with its uid and no version."""
    sent: list[dict[str, Any]] = []
    transport = _Transport()

    def record(*args: Any, **kw: Any) -> _Response:
        sent.append(json.loads(kw["body"]))
        return _Response()

    transport.request = record  # type: ignore[method-assign]
    api = RestApi(transport, max_in_flight=1)
    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n"}}
    api.apply(manifest, uid=None)
    api.apply(manifest, uid="u-1")
    assert sent[0]["metadata"] == {"name": "s", "namespace": "n", "resourceVersion": "1"}
    assert sent[1]["metadata"] == {"name": "s", "namespace": "n", "uid": "u-1"}
    assert manifest["metadata"] == {"name": "s", "namespace": "n"}  # the caller's is untouched


def test_refused_preconditions_are_told_apart_from_the_api_servers_own_words() -> None:
    taken = ApiError.from_response(
        409,
        b'{"kind":"Status","status":"Failure","reason":"Conflict","code":409,"message":'
        b'"Operation cannot be fulfilled on services \\"shop\\": the object has been modified;'
        b' please apply your changes to the latest version and try again",'
        b'"details":{"name":"shop","kind":"services"}}',
    )
    gone = ApiError.from_response(
        409,
        b'{"kind":"Status","reason":"Conflict","code":409,"message":"Operation cannot be '
        b'fulfilled on services \\"shop\\": uid mismatch: the provided object specified uid u-1, '
        b'and no existing object was found"}',
    )
    replaced = ApiError.from_response(
        422,
        b'{"kind":"Status","reason":"Invalid","code":422,"message":"Service \\"shop\\" is '
        b'invalid: metadata.uid: Invalid value: \\"u-1\\": field is immutable","details":'
        b'{"causes":[{"reason":"FieldValueInvalid","field":"metadata.uid"}]}}',
    )
    assert (taken.name_taken, taken.uid_gone, taken.uid_mismatch) == (True, False, False)
    assert (gone.name_taken, gone.uid_gone, gone.uid_mismatch) == (False, True, False)
    assert (replaced.name_taken, replaced.uid_gone, replaced.uid_mismatch) == (False, False, True)
    assert taken.precondition_failed and gone.precondition_failed and replaced.precondition_failed
    quota = ApiError(403, "Forbidden", 'services "shop" is forbidden: exceeded quota: q')
    assert not quota.precondition_failed  # a refusal, not a precondition: never retried by look


def test_the_write_fence_refuses_writes_only_and_never_holds_back_the_lease() -> None:
    """While the fence is shut (not the leader), no write leaves: reads still do (the standby's
    cache), and so do the election's own Lease requests, which also skip the in-flight limit."""
    transport = _Transport()
    api = RestApi(transport, max_in_flight=1)
    leading = False
    api.fence = lambda: leading
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        try:
            api.request(method, "/api/v1/namespaces/n/services/s", body={})
        except ApiError as err:
            assert err.reason == "NotLeader"
        else:
            raise AssertionError(f"{method} left a fenced process")
    assert transport.calls == 0
    assert api.request("GET", "/version")[0] == 200
    with api._in_flight:  # every slot taken by a reconcile: the renewal still goes out
        assert api.request("PUT", "/apis/coordination.k8s.io/v1/x", body={}, lease=True)[0] == 200
    leading = True
    assert api.request("PATCH", "/api/v1/namespaces/n/services/s", body={})[0] == 200
    assert transport.calls == 3


def test_drain_waits_for_the_writes_in_flight() -> None:
    transport = _Transport()
    gate = threading.Event()
    in_flight: list[int] = []

    def slow(*args: Any, **kw: Any) -> _Response:
        in_flight.append(1)
        gate.wait(5)
        in_flight.pop()
        return _Response()

    transport.request = slow  # type: ignore[method-assign]
    api = RestApi(transport, max_in_flight=4)
    api.fence = lambda: True
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(api.request, "PATCH", "/x", body={}) for _ in range(3)]
        while len(in_flight) < 3:
            time.sleep(0.001)
        assert api.drain_writes(0.05) is False  # still on their way
        threading.Timer(0.05, gate.set).start()
        assert api.drain_writes(5.0) is True
        assert not in_flight
        assert [f.result() for f in futures] == [(200, b"{}")] * 3


def test_a_status_write_tests_the_apps_uid_first_and_replaces_the_whole_status() -> None:
    """One request: a JSON patch whose first operation tests the uid on the stored object (the
    API server ignores a uid in a merge patch of /status: tests/e2e/test_status_precondition)."""
    sent: list[tuple[Any, str]] = []
    transport = _Transport()

    def record(*args: Any, **kw: Any) -> _Response:
        sent.append((kw["body"], kw["headers"]["Content-Type"]))
        return _Response()

    transport.request = record  # type: ignore[method-assign]
    api = RestApi(transport, max_in_flight=1)
    status = {"observedGeneration": 2, "conditions": []}
    api.patch_status("n", "shop", status, "u-1")
    assert sent == [
        (
            [
                {"op": "test", "path": "/metadata/uid", "value": "u-1"},
                {"op": "add", "path": "/status", "value": status},
            ],
            "application/json-patch+json",
        )
    ]


def test_a_failed_uid_test_is_told_apart_from_a_refused_status() -> None:
    # the real API server's answers (kube-apiserver 1.36), to the uid test and to a bad status
    replaced = ApiError.from_response(
        422,
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
        b'"the server rejected our request due to an error in our request","reason":"Invalid",'
        b'"details":{},"code":422}',
    )
    invalid = ApiError.from_response(
        422,
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
        b'"PythonApp.pythonapp.dev \\"shop\\" is invalid: [status.replicas: Invalid value: '
        b'\\"string\\": replicas in body must be of type integer: \\"string\\"]","reason":'
        b'"Invalid","details":{"name":"shop","group":"pythonapp.dev","kind":"PythonApp",'
        b'"causes":[{"reason":"FieldValueTypeInvalid","message":"Invalid value: \\"string\\": '
        b'replicas in body must be of type integer: \\"string\\"","field":"status.replicas"}]},'
        b'"code":422}',
    )
    assert replaced.app_replaced and not invalid.app_replaced
    assert not ApiError(404, "NotFound", "not found").app_replaced


@given(st.text(st.characters(exclude_categories=("Cs",))))
def test_an_apply_body_reads_back_unchanged_as_yaml(value: str) -> None:
    """Apply bodies are YAML to the API server. Plain json.dumps writes an emoji as a surrogate
    pair escape, which its YAML reader refuses (400 on every apply of a Deployment whose env
    holds one); YAML also refuses raw C1 controls and folds NEL/LS/PS. PyYAML reads YAML 1.1
    as the API server's reader does."""
    manifest = {"kind": "ConfigMap", "data": {value: value, "list": [value, "🐍"]}}
    body = apply_body(manifest)
    assert yaml.safe_load(body.decode()) == manifest
    assert json.loads(body) == manifest


def test_closing_streams_never_fails_on_one_that_ended_meanwhile() -> None:
    """urllib3 refuses to shut down a response whose connection went back to the pool; the
    operator's clean-up then failed and kopf retried it a minute later (the fault suite's
    SIGTERM mid-rollout: no exit within 30 s, the Lease never released)."""

    class Ended:
        closed = False

        def shutdown(self) -> None:
            raise RuntimeError("Cannot shutdown as connection has already been released")

    class Open:
        def __init__(self) -> None:
            self.ended = False

        def shutdown(self) -> None:
            self.ended = True

    api = RestApi(_Transport())
    ended, live = Ended(), Open()
    api._streams.update({ended, live})
    api.close_streams()
    assert live.ended
