"""Reconcile on anything a PythonApp may hold when it was stored while the CRD had no schema.

The API server always checks metadata, but a CRD without a schema (or with
``x-kubernetes-preserve-unknown-fields``) lets any JSON into ``spec`` and ``status``. Such an
object must never make reconcile raise (a raising reconcile is retried for ever and says
nothing): it ends Stalled with reason InvalidSpec, one Warning event, and the children of the
app it was before stay exactly as they were.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from tests.unit.factories import make_doc
from tests.unit.fake_api import FakeApi
from tests.unit.strategies import json_values, near_misses, wild_specs

from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.controller.kinds import APP, KINDS_BY_KIND, trim
from pythonapp_operator.controller.reconcile import Memory, Snapshot, reconcile

NOW = "2026-12-02T00:00:00Z"
MISSING = object()

#: what a schema-less CRD lets into spec: any JSON, a near-miss of a valid spec, or nothing
garbage_specs = st.one_of(
    json_values,
    wild_specs(),
    near_misses().map(lambda m: m.spec),
    st.just(MISSING),
)
garbage_statuses = st.one_of(
    st.just(MISSING),
    json_values,
    st.fixed_dictionaries(
        {"conditions": st.one_of(json_values, st.lists(json_values, max_size=3))},
        optional={"observedGeneration": json_values, "image": json_values},
    ),
)


def _snapshot(api: FakeApi) -> Snapshot:
    app = trim(APP, api.objects["PythonApp", "team-a", "shop"])
    children = {
        kind: trim(KINDS_BY_KIND[kind], obj)
        for (kind, _, _), obj in api.objects.items()
        if kind != "PythonApp"
    }
    return Snapshot(app, children, dict.fromkeys(children, 1))


def _is_invalid(spec: object) -> bool:
    doc = make_doc()
    doc.pop("spec")
    if spec is not MISSING:
        doc["spec"] = spec
    app, _ = validate_document(doc)
    return app is None


def _conditions(api: FakeApi) -> dict[str, dict[str, Any]]:
    status = api.objects["PythonApp", "team-a", "shop"].get("status") or {}
    return {c["type"]: c for c in status["conditions"]}


@given(spec=garbage_specs, status=garbage_statuses, converged_before=st.booleans())
def test_reconcile_never_raises_on_a_schema_less_object_and_stalls_it(
    spec: object, status: object, converged_before: bool
) -> None:
    if not _is_invalid(spec):
        return  # a wild value that happened to be valid: nothing to stall (rare)
    api, memory = FakeApi(), Memory()
    app = api.put(make_doc())
    app["metadata"]["generation"] = 1
    api.objects["PythonApp", "team-a", "shop"] = app
    if converged_before:
        reconcile(api, _snapshot(api), memory, now=lambda: NOW)
    children_before = {k: copy.deepcopy(v) for k, v in api.objects.items() if k[0] != "PythonApp"}

    stored = api.objects["PythonApp", "team-a", "shop"]
    if spec is MISSING:
        stored.pop("spec")
    else:
        stored["spec"] = copy.deepcopy(spec)
    if status is not MISSING:
        stored["status"] = copy.deepcopy(status)
    stored["metadata"]["generation"] = 2
    api.calls.clear()
    api.events.clear()

    outcome = reconcile(api, _snapshot(api), memory, now=lambda: NOW)

    assert outcome.problems, "an invalid spec was not reported"
    assert outcome.applied == [] and outcome.deleted == []
    assert {k: v for k, v in api.objects.items() if k[0] != "PythonApp"} == children_before
    conditions = _conditions(api)
    assert conditions["Stalled"]["status"] == "True"
    assert conditions["Stalled"]["reason"] == "InvalidSpec"
    assert conditions["Ready"]["status"] == "False"
    assert [(e[0], e[1]) for e in api.events] == [("Warning", "InvalidSpec")]
    # and a second pass over the same object is quiet: no write, no second event
    api.calls.clear()
    again = reconcile(api, _snapshot(api), memory, now=lambda: NOW)
    assert again.writes == 0 and len(api.events) == 1
