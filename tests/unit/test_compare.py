"""When a child must be applied: missing, changed, drifted; never for others' additions."""

from __future__ import annotations

import copy
from typing import Any

from tests.unit.factories import make_doc

from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.controller.compare import HASH_ANNOTATION, is_subset, needs_apply, with_hash
from pythonapp_operator.render import render


def _deployment(**spec: Any) -> dict[str, Any]:
    app, problems = validate_document(make_doc(**spec))
    assert app is not None, problems
    return render(app)[0]


def _live(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API server would hold after applying: our fields plus defaults of its own."""
    live = copy.deepcopy(with_hash(desired))
    live["metadata"]["uid"] = "u1"
    live["metadata"]["managedFields"] = [{"manager": "pythonapp-operator"}]
    live["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = (
        "/dev/termination-log"
    )
    live["status"] = {"replicas": 2}
    return live


def test_missing() -> None:
    assert needs_apply(_deployment(), None) == "missing"


def test_in_place_needs_nothing() -> None:
    desired = _deployment()
    assert needs_apply(desired, _live(desired)) is None


def test_spec_change_is_seen_even_when_a_field_is_removed() -> None:
    old = _deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    new = _deployment(env=[{"name": "A", "value": "1"}])
    assert is_subset(new, _live(old))  # a subset test alone would miss the removal
    assert needs_apply(new, _live(old)) == "changed"


def test_drift_of_an_owned_field() -> None:
    desired = _deployment()
    live = _live(desired)
    live["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = False
    assert needs_apply(desired, live) == "drift"
    live = _live(desired)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil@sha256:" + "0" * 64
    assert needs_apply(desired, live) == "drift"
    live = _live(desired)
    live["spec"]["template"]["spec"]["volumes"].pop()
    assert needs_apply(desired, live) == "drift"


def test_rollout_restart_annotation_and_foreign_additions_are_not_drift() -> None:
    desired = _deployment()
    live = _live(desired)
    tmpl = live["spec"]["template"]
    tmpl["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "2026-11-24T00:00:00Z"
    tmpl["spec"]["containers"][0]["env"] = [{"name": "INJECTED", "value": "x"}]
    live["metadata"]["labels"]["team"] = "a"
    assert needs_apply(desired, live) is None


def test_quantities_respelled_by_the_server_are_equal() -> None:
    desired = _deployment(resources={"requests": {"cpu": "0.5"}, "limits": {"memory": "1Gi"}})
    live = _live(desired)
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "500m"
    assert needs_apply(desired, live) is None
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "600m"
    assert needs_apply(desired, live) == "drift"


def test_scalar_lists_are_atomic_and_booleans_are_not_integers() -> None:
    assert not is_subset({"a": ["x"]}, {"a": ["x", "y"]})
    assert not is_subset({"a": True}, {"a": 1})
    assert is_subset({"a": 0}, {"a": 0})


def test_hash_annotation_is_stable_and_changes_with_content() -> None:
    a = with_hash(_deployment())
    b = with_hash(_deployment())
    c = with_hash(_deployment(replicas=3))
    assert (
        a["metadata"]["annotations"][HASH_ANNOTATION]
        == b["metadata"]["annotations"][HASH_ANNOTATION]
    )
    assert (
        a["metadata"]["annotations"][HASH_ANNOTATION]
        != c["metadata"]["annotations"][HASH_ANNOTATION]
    )
