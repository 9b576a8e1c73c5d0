"""The cache keeps little, never goes back in time, and tells echoes from changes."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pythonapp_operator.controller.cache import Change, Store
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


def deployment(name: str, image: str) -> dict[str, Any]:
    """A Deployment as the cache holds it, alike for every app but in name and image."""
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "pythonapp-operator"}
    container = {
        "name": "app",
        "image": image,
        "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}},
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "team-a", "uid": f"uid-{name}", "labels": labels},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [container]}}},
        "status": {"replicas": 2, "readyReplicas": 2, "observedGeneration": 1},
    }


def test_the_cache_holds_each_object_compressed_against_the_first_of_its_kind() -> None:
    store = Store()
    first = deployment("app-00000", "ghcr.io/acme/app@sha256:" + "0" * 64)
    store.upsert(DEPLOYMENT, first)
    others = [deployment(f"app-{i:05d}", f"ghcr.io/acme/app@sha256:{i:064x}") for i in range(1, 50)]
    for other in others:
        store.upsert(DEPLOYMENT, other)
    # what comes back is exactly what went in, for the dictionary object and all the others
    for original in (first, *others):
        assert store.get(DEPLOYMENT, "team-a", original["metadata"]["name"]) == original
        assert store.status(DEPLOYMENT, "team-a", original["metadata"]["name"]) == {
            "replicas": 2,
            "readyReplicas": 2,
            "observedGeneration": 1,
        }
    # and an object like the first costs a fraction of its JSON (what sets it apart)
    entry = store.objects["Deployment"][("team-a", "app-00049")]
    plain = json.dumps(others[-1], sort_keys=True, separators=(",", ":")).encode()
    assert len(entry.content) < len(plain) / 4, (len(entry.content), len(plain))


def test_a_kind_whose_first_objects_are_encoded_in_threads_at_once_decodes_every_one() -> None:
    store = Store()
    items = [deployment(f"app-{i:05d}", f"img@sha256:{i:064x}") for i in range(64)]
    with ThreadPoolExecutor(8) as pool:
        encoded = list(pool.map(lambda item: store.encode(DEPLOYMENT, item), items))
    for key, entry in encoded:
        store.put(DEPLOYMENT, key, entry)
    for item in items:
        assert store.get(DEPLOYMENT, "team-a", item["metadata"]["name"]) == item


def test_the_same_object_encodes_to_the_same_bytes_so_an_echo_is_no_change() -> None:
    store = Store()
    one = deployment("app-1", "img@sha256:" + "1" * 64)
    store.upsert(DEPLOYMENT, {**one, "metadata": {**one["metadata"], "resourceVersion": "5"}})
    again = {**one, "metadata": {**one["metadata"], "resourceVersion": "6"}}
    assert store.upsert(DEPLOYMENT, again) is Change.NONE
    edited = {**again, "metadata": {**again["metadata"], "resourceVersion": "7"}}
    edited["spec"] = {**edited["spec"], "replicas": 3}
    assert store.upsert(DEPLOYMENT, edited) is Change.OTHER
