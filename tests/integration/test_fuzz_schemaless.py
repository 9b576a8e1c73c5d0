"""PythonApps stored while the CRD had no schema never crash the operator's reconcile.

The honest way to get such objects: the real CRD (same group, same resource, so the operator's
own paths reach them) is replaced by one whose schema keeps anything
(``x-kubernetes-preserve-unknown-fields``), generated garbage is stored through it (spec and
status), and the generated CRD is put back, as after a botched upgrade or a hand edit. Then
the operator's reconcile (:func:`~pythonapp_operator.controller.reconcile.reconcile` over
:class:`~pythonapp_operator.controller.client.RestApi`, what the workers run) goes over each
stored object: it must not raise, and each object that is invalid as the API server now
hands it out must end Stalled with reason InvalidSpec on the API server, its status written
past the restored schema (the others are reconciled as any valid app).

A known limit, kept visible here: a value of the wrong JSON type under a node with CEL rules
(an object where a quantity belongs, a list where probes belong) cannot even be converted for
CEL ("invalid data, expected ..."), that error is not ratcheted, and so the API server refuses
every status write to the object. Reconcile then fails with reason Rejected and the API
server's message, posts the InvalidSpec Warning event and writes no child; the app's status
cannot say it. The test counts these and requires them to be a minority.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kubernetes import client
from tests.conftest import wait_for
from tests.integration.server import Server
from tests.integration.test_crd_agreement import ROOT, install_crd
from tests.unit.factories import make_doc
from tests.unit.strategies import json_values, near_misses, wild_specs

from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.controller.client import RestApi
from pythonapp_operator.controller.kinds import APP, trim
from pythonapp_operator.controller.reconcile import Memory, Snapshot, reconcile

pytestmark = pytest.mark.cluster
MISSING = "<missing>"
#: the API server's words when a CEL rule cannot read a value of the wrong JSON type
CEL_CANNOT_READ = "invalid data, expected"


def lax_crd() -> dict[str, Any]:
    """The generated CRD with a schema that keeps anything under the root, and without the
    /scale subresource (the API server checks its replicas path on every write, and a CRD
    from before any schema had none)."""
    crd = yaml.safe_load((ROOT / "crds" / "pythonapps.yaml").read_text())
    for version in crd["spec"]["versions"]:
        version["schema"] = {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        }
        (version.get("subresources") or {}).pop("scale", None)
    return crd  # type: ignore[no-any-return]


def garbage() -> list[tuple[Any, Any]]:
    """(spec, status) pairs drawn by hypothesis: any JSON, wild values in a valid spec,
    near-misses, no spec at all; statuses of any shape."""
    found: list[tuple[Any, Any]] = []

    @settings(max_examples=max(20, settings.default.max_examples // 4))
    @given(
        spec=st.one_of(
            json_values, wild_specs(), near_misses().map(lambda m: m.spec), st.just(MISSING)
        ),
        status=st.one_of(
            st.just(MISSING),
            json_values,
            st.fixed_dictionaries({"conditions": st.lists(json_values, max_size=2)}),
        ),
    )
    @example(  # found by the chaos profile: the limit rule errored, refusing the status patch
        spec={
            "image": f"docker.io/app@sha256:{'0' * 64}",
            "resources": {"limits": {"memory": "+muEG0e"}, "requests": {"memory": "1Gi"}},
        },
        status=MISSING,
    )
    @example(  # ... and the known limit: an object where a quantity belongs
        spec={
            "image": f"docker.io/app@sha256:{'0' * 64}",
            "resources": {"limits": {"memory": "+muEG0e"}, "requests": {"cpu": {}}},
        },
        status=MISSING,
    )
    def collect(spec: Any, status: Any) -> None:
        found.append((spec, status))

    collect()
    return found


def test_objects_stored_without_a_schema_end_stalled_invalid_spec(
    kubectl: Path,
    kubeconfig_path: Path,
    api_client: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    server = Server(api_client)
    cases = garbage()
    lax = tmp_path / "pythonapps-lax.yaml"
    lax.write_text(yaml.safe_dump(lax_crd()))
    names: list[str] = []
    try:
        install_crd(kubectl, kubeconfig_path, lax)
        probe = make_doc()
        probe["metadata"] = {"name": "probe-lax", "namespace": namespace}
        probe["spec"] = "not an object"
        wait_for(lambda: server.create_app(probe, dry_run=True).ok, 30, "the lax schema")
        for i, (spec, status) in enumerate(cases):
            doc = make_doc()
            doc["metadata"] = {"name": f"junk-{i}", "namespace": namespace}
            if spec == MISSING:
                doc.pop("spec")
            else:
                doc["spec"] = copy.deepcopy(spec)
            created = server.create_app(doc, dry_run=False)
            assert created.ok, (created.status, created.message, spec)
            names.append(doc["metadata"]["name"])
            if status != MISSING:
                written = server.call(
                    "PATCH",
                    Server.app_path(namespace, doc["metadata"]["name"]) + "/status",
                    body={"status": status},
                    content_type="application/merge-patch+json",
                )
                assert written.ok, (written.status, written.message, status)
    finally:
        install_crd(kubectl, kubeconfig_path)
    wait_for(lambda: not server.create_app(probe, dry_run=True).ok, 30, "the generated schema")

    api = RestApi(api_client)
    stalled = refused = 0
    for name, (spec, status) in zip(names, cases, strict=True):
        stored = server.call("GET", Server.app_path(namespace, name))
        assert stored.ok, stored
        # What the API server hands out now: with the schema back it prunes unknown fields on
        # read, so a spec whose only fault was an unknown field is a valid one again.
        valid, _ = validate_document({k: v for k, v in stored.body.items() if k != "status"})
        outcome = reconcile(api, Snapshot(trim(APP, stored.body), {}), Memory())
        where = f"{name}: spec {spec!r}, status {status!r}"
        if outcome.failure is not None and CEL_CANNOT_READ in outcome.failure.message:
            # The known limit (see the module doc): every status write is refused. Reconcile
            # must still not raise, write no child, and say why in its failure.
            assert outcome.problems and outcome.applied == [], where
            assert outcome.failure.reason == "Rejected", where
            refused += 1
            continue
        assert outcome.failure is None, f"{outcome.failure}: {where}"
        # (an operator running in the same session may have written the same status first)
        after = server.call("GET", Server.app_path(namespace, name)).body
        conditions = {c["type"]: c for c in after["status"]["conditions"]}
        if valid is not None:
            assert conditions["Stalled"]["status"] == "False", where
            continue
        stalled += 1
        assert outcome.problems and outcome.applied == [], where
        assert conditions["Stalled"]["status"] == "True", where
        assert conditions["Stalled"]["reason"] == "InvalidSpec", where
        assert conditions["Ready"]["reason"] == "InvalidSpec", where
    assert stalled >= len(names) // 2, f"only {stalled} of {len(names)} objects were invalid"
    # (The explicit example met the known limit in every run alone, but not in one full `make
    # test` from a fresh clone (0 refused; there the session's own operator reconciles these
    # objects too): the cause is not established. Fewer refusals is never a fault; a majority
    # of them would be.)
    assert refused <= len(names) // 2, f"{refused} of {len(names)} status writes refused"
