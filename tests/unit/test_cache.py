"""The cache keeps little, never goes back in time, and tells echoes from changes."""

from __future__ import annotations

from typing import Any

from pythonapp_operator.controller.cache import Store
from pythonapp_operator.controller.kinds import KINDS_BY_KIND, owner_key, trim

SERVICE, DEPLOYMENT = KINDS_BY_KIND["Service"], KINDS_BY_KIND["Deployment"]


def obj(rv: str, uid: str = "u1", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "shop",
            "namespace": "team-a",
            "uid": uid,
            "resourceVersion": rv,
            "managedFields": [{"manager": "x", "fieldsV1": {"f:spec": {}}}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "a": "b"},
            "ownerReferences": [
                {
                    "apiVersion": "pythonapp.dev/v1alpha1",
                    "kind": "PythonApp",
                    "name": "shop",
                    "uid": "app",
                    "controller": True,
                },
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "c"},
            ],
        },
        "spec": {"ports": [{"port": 80}]},
        "status": {"loadBalancer": {}},
        **extra,
    }


def test_trim_drops_managed_fields_last_applied_and_unneeded_status() -> None:
    trimmed = trim(SERVICE, obj("1"))
    assert "managedFields" not in trimmed["metadata"]
    assert trimmed["metadata"]["annotations"] == {"a": "b"}
    assert "status" not in trimmed
    assert [r["kind"] for r in trimmed["metadata"]["ownerReferences"]] == ["PythonApp"]
    assert owner_key(trimmed) == ("team-a", "shop")
    dep = trim(DEPLOYMENT, {**obj("1"), "kind": "Deployment", "status": {"replicas": 2}})
    assert dep["status"] == {"replicas": 2}  # the app's status is computed from it


def test_an_echo_is_not_a_change_and_an_older_version_never_replaces_a_newer() -> None:
    store = Store()
    assert store.upsert(SERVICE, trim(SERVICE, obj("5")))
    assert not store.upsert(SERVICE, trim(SERVICE, obj("5")))  # the watch echoes our write
    assert not store.upsert(SERVICE, trim(SERVICE, obj("4", spec={"ports": []})))  # late, older
    assert store.get(SERVICE, "team-a", "shop")["spec"] == {"ports": [{"port": 80}]}  # type: ignore[index]
    assert store.upsert(SERVICE, trim(SERVICE, obj("6", spec={"ports": []})))
    assert not store.upsert(SERVICE, trim(SERVICE, {**obj("7"), "spec": {"ports": []}}))


def test_a_recreated_object_replaces_the_old_one_whatever_its_version() -> None:
    store = Store()
    store.upsert(SERVICE, trim(SERVICE, obj("9", uid="old")))
    assert store.upsert(SERVICE, trim(SERVICE, obj("3", uid="new")))
    assert not store.delete(SERVICE, "team-a", "shop", "old")  # a late DELETED of the old one
    assert store.get(SERVICE, "team-a", "shop") is not None
    assert store.delete(SERVICE, "team-a", "shop", "new")
    assert store.get(SERVICE, "team-a", "shop") is None


def test_a_read_is_a_copy_and_a_status_change_is_told_from_a_content_change() -> None:
    store = Store()
    dep = {**obj("1"), "kind": "Deployment", "status": {"replicas": 1}}
    store.upsert(DEPLOYMENT, trim(DEPLOYMENT, dep))
    first = store.get(DEPLOYMENT, "team-a", "shop")
    assert first is not None and first["metadata"]["resourceVersion"] == "1"
    first["spec"]["ports"] = []  # a reader's change stays the reader's
    again = store.get(DEPLOYMENT, "team-a", "shop")
    assert again is not None and again["spec"] == {"ports": [{"port": 80}]}
    assert store.status(DEPLOYMENT, "team-a", "shop") == {"replicas": 1}
    assert store.status(SERVICE, "team-a", "shop") == {}
    version = store.version(DEPLOYMENT, "team-a", "shop")
    moved = {**dep, "metadata": {**dep["metadata"], "resourceVersion": "2"}, "status": {}}
    assert store.upsert(DEPLOYMENT, trim(DEPLOYMENT, moved)).name == "STATUS"
    assert store.version(DEPLOYMENT, "team-a", "shop") == version  # content unchanged
    assert store.has(DEPLOYMENT, "team-a", "shop") and not store.has(SERVICE, "team-a", "x")
