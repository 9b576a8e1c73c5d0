"""The status write's uid precondition, on the real API server (issue 17, finding 5).

A reconcile computes a status for the app it read; if that app is deleted and a new one of the
same name created before the write, the write must not land on the successor (it would show the
old app's verdict and generation on the new one). The API server is the only place that can
check this in the same request as the write: these tests prove which precondition it honours on
the ``/status`` subresource, and that the operator's status write uses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from tests.conftest import wait_for
from tests.e2e.test_operator import app_doc

from pythonapp_operator import GROUP, VERSION
from pythonapp_operator.controller.client import ApiError, RestApi
from pythonapp_operator.controller.kinds import APP
from pythonapp_operator.controller.status import compute_status

pytestmark = pytest.mark.cluster

PLURAL = "pythonapps"
#: the image a stale write would leave on the successor's status: nothing else writes it
STALE_IMAGE = "ghcr.io/acme/stale:0.0.1@sha256:" + "5e" * 32


@pytest.fixture
def rest(kubeconfig_path: Path) -> Iterator[RestApi]:
    """The operator's own client, on a connection of its own (RestApi sets its user agent)."""
    api = config.new_client_from_config(config_file=str(kubeconfig_path))
    yield RestApi(api)
    api.close()


def _stale_status() -> dict[str, Any]:
    """A status as the operator computes it, marked with an image no one else writes."""
    status = compute_status(
        generation=1, problems=[], deployment=None, previous=None, now="2026-01-01T00:00:00Z"
    )
    return {**status, "image": STALE_IMAGE}


def _replaced(custom_objects: client.CustomObjectsApi, namespace: str) -> tuple[str, str]:
    """Create an app, delete it, create one of the same name: (old uid, successor's uid)."""

    def create() -> str:
        app = custom_objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, app_doc(namespace)
        )
        return str(app["metadata"]["uid"])

    def gone() -> bool:
        try:
            custom_objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "shop")
        except ApiException as e:
            if e.status == 404:
                return True
            raise
        return False

    old = create()
    custom_objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "shop")
    wait_for(gone, 30, "the first app to be gone")  # no finalizer: at once, normally
    new = create()
    assert new != old
    return old, new


def _successor_image(custom_objects: client.CustomObjectsApi, namespace: str) -> Any:
    app = custom_objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "shop")
    return (app.get("status") or {}).get("image")


def test_a_status_write_for_a_deleted_app_is_refused_on_its_successor(
    crd: None, custom_objects: client.CustomObjectsApi, rest: RestApi, namespace: str
) -> None:
    old, new = _replaced(custom_objects, namespace)
    before = rest.requests.total()
    with pytest.raises(ApiError) as err:
        rest.patch_status(namespace, "shop", _stale_status(), old)
    assert rest.requests.total() - before == 1  # one request per status write, as before
    assert err.value.status in (409, 422), err.value
    assert err.value.app_replaced, err.value
    # (The session's operator, when running, may write the successor's own status meanwhile:
    # never this image.)
    assert _successor_image(custom_objects, namespace) != STALE_IMAGE

    # The same write for the app that is there lands, and returns that app.
    result = rest.patch_status(namespace, "shop", _stale_status(), new)
    assert result["metadata"]["uid"] == new and result["status"]["image"] == STALE_IMAGE


def test_a_status_write_for_an_app_that_is_gone_is_a_404(
    crd: None, custom_objects: client.CustomObjectsApi, rest: RestApi, namespace: str
) -> None:
    old, _ = _replaced(custom_objects, namespace)
    custom_objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "shop")
    with pytest.raises(ApiError) as err:
        rest.patch_status(namespace, "shop", _stale_status(), old)
    assert err.value.status == 404 and not err.value.app_replaced


def test_a_merge_patch_does_not_check_the_uid_on_status(
    crd: None, custom_objects: client.CustomObjectsApi, rest: RestApi, namespace: str
) -> None:
    """Why the status write is a JSON patch with a ``test`` of the uid: ``metadata.uid`` in a
    merge patch is checked on the object itself (422, immutable) but not on ``/status``, whose
    strategy copies the stored metadata over the patched object before anything is checked.
    (If this ever fails, the API server started checking it: the JSON patch still works.)"""
    old, new = _replaced(custom_objects, namespace)
    path = APP.path(namespace, "shop")
    body = {"metadata": {"uid": old}, "status": _stale_status()}
    main, main_data = rest.request(
        "PATCH", path, body=body, content_type="application/merge-patch+json"
    )
    assert main == 422 and "metadata.uid" in json.loads(main_data)["message"]
    code, data = rest.request(
        "PATCH", path + "/status", body=body, content_type="application/merge-patch+json"
    )
    assert code == 200, data[:500]
    landed = json.loads(data)
    assert landed["metadata"]["uid"] == new and landed["status"]["image"] == STALE_IMAGE
