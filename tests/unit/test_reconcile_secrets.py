"""Secrets checked before pods fail, and rotated per reference (reconcile on the in-memory fake;
tests/e2e/test_secrets.py proves it on the real API server)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from tests.unit.test_reconcile import NOW, World

from pythonapp_operator.controller.reconcile import Memory, Snapshot, reconcile
from pythonapp_operator.controller.secretrefs import Digests, digest
from pythonapp_operator.render import SECRET_HASH_PREFIX, SECRET_VERSIONS_ANNOTATION

ANNOTATION = SECRET_HASH_PREFIX + "secret-db"


def secret(name: str = "db", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "team-a"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


class SecretWorld(World):
    """The fake API server, the cache, and the Secrets' and ConfigMaps' metadata as the watch
    delivers it; ``readable=False`` is an install that may not list Secrets,
    ``config_readable=False`` one that may not list ConfigMaps."""

    def __init__(self, readable: bool = True, config_readable: bool = True, **spec: Any) -> None:
        self.readable = readable
        self.config_readable = config_readable
        self.digests = Digests()
        self.config_digests = Digests()
        super().__init__(**spec)

    def sync(self) -> None:
        """As :meth:`World.sync`, but a Secret keeps its resourceVersion while its data and
        metadata are unchanged since the last sync, as on a real API server (the version is
        what tells the operator a Secret changed)."""
        seen: dict[Any, tuple[str, str]] = getattr(self, "_seen", {})
        super().sync()
        for key, obj in self.api.objects.items():
            if key[0] not in ("Secret", "ConfigMap"):
                continue
            content = self._content(obj)
            if key in seen and seen[key][1] == content:
                obj["metadata"]["resourceVersion"] = seen[key][0]
            seen[key] = (obj["metadata"]["resourceVersion"], content)
        self._seen = seen

    @staticmethod
    def _content(obj: dict[str, Any]) -> str:
        meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
        return json.dumps({**obj, "metadata": meta}, sort_keys=True)

    def snapshot(self) -> Snapshot:
        snap = super().snapshot()
        spec = snap.app["spec"]
        secrets = configmaps = None
        if self.readable:
            names = [s["name"] for f in ("secrets", "imagePullSecrets") for s in spec.get(f) or []]
            secrets = self._watched("Secret", names)
        if self.config_readable:
            configmaps = self._watched("ConfigMap", [c["name"] for c in spec.get("config") or []])
        return Snapshot(snap.app, snap.children, snap.versions, snap.observed, secrets, configmaps)

    def _watched(self, kind: str, names: list[str]) -> dict[str, tuple[str, str] | None]:
        held: dict[str, tuple[str, str] | None] = {}
        for name in names:
            obj = self.api.objects.get((kind, "team-a", name))
            meta = (obj or {}).get("metadata") or {}
            held[name] = None if obj is None else (meta["uid"], meta["resourceVersion"])
        return held

    def template_annotations(self) -> dict[str, str]:
        dep = self.api.objects["Deployment", "team-a", "shop"]
        found: dict[str, str] = dep["spec"]["template"]["metadata"].get("annotations") or {}
        return found

    def edit_spec(self, **spec: Any) -> None:
        app = self.api.objects["PythonApp", "team-a", "shop"]
        app["spec"].update(spec)
        app["metadata"]["generation"] = app["metadata"].get("generation", 1) + 1
        self.sync()


DB = [{"name": "db", "env": [{"name": "DB_PASSWORD", "key": "password"}]}]


def test_a_missing_secret_creates_nothing_and_resolves_by_itself() -> None:
    world = SecretWorld(secrets=DB)
    outcome = world.reconcile()
    assert [c for c in world.api.writes() if c[0] == "apply"] == []  # no pod that cannot start
    assert outcome.failure is not None and outcome.failure.reason == "SecretMissing"
    ready = world.condition("Ready")
    assert ready["reason"] == "SecretMissing" and ready["status"] == "False"
    assert "Secret db (spec.secrets[0]) does not exist" in ready["message"]
    assert "no pod is created until it exists" in ready["message"]
    assert world.condition("Stalled")["status"] == "False"  # it may come: a GitOps sync
    world.api.put(secret(password="s3cret"))
    world.sync()
    outcome = world.reconcile()
    assert outcome.failure is None
    assert ("apply", "Deployment") in world.api.calls
    assert ANNOTATION in world.template_annotations()


def test_a_missing_key_is_named() -> None:
    world = SecretWorld(secrets=DB)
    world.api.put(secret(user="app"))
    world.sync()
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "SecretMissing"
    assert "Secret db has no key password (spec.secrets[0].env)" in outcome.failure.message


def test_a_spec_change_onto_a_missing_secret_does_not_roll() -> None:
    world = SecretWorld()
    world.reconcile()
    world.sync()
    before = copy.deepcopy(world.api.objects["Deployment", "team-a", "shop"]["spec"])
    world.edit_spec(secrets=DB)
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "SecretMissing"
    assert "the running version keeps serving" in outcome.failure.message
    after = world.api.objects["Deployment", "team-a", "shop"]["spec"]
    assert after == before and not [c for c in world.api.calls if c[0] == "apply"]


def test_a_data_change_rolls_once_and_a_metadata_change_not_at_all() -> None:
    world = SecretWorld(secrets=DB)
    world.api.put(secret(password="one"))
    world.sync()
    world.reconcile()
    world.sync()
    first = world.template_annotations()[ANNOTATION]
    world.reconcile()  # nothing changed: nothing read, nothing written
    assert world.api.calls == []
    # someone labels the Secret: a new resourceVersion, the same data: read again, no write
    world.api.objects["Secret", "team-a", "db"]["metadata"]["labels"] = {"team": "a"}
    world.sync()
    world.reconcile()
    assert world.api.writes() == []
    # the password rotates: the pods roll, once
    world.api.objects["Secret", "team-a", "db"]["data"] = secret(password="two")["data"]
    world.sync()
    world.reconcile()
    assert world.api.writes() == [("apply", "Deployment")]
    second = world.template_annotations()[ANNOTATION]
    assert second != first
    world.sync()
    world.reconcile()
    assert world.api.writes() == []


def test_rotation_none_reads_nothing_and_never_rolls() -> None:
    world = SecretWorld(secrets=[{"name": "db", "rotation": "none"}])
    world.api.put(secret(password="one"))
    world.sync()
    assert world.reconcile().failure is None
    assert ("get", "Secret") not in world.api.calls  # existence is the watch's word
    assert not any(k.startswith(SECRET_HASH_PREFIX) for k in world.template_annotations())


def test_without_rights_to_read_secrets_nothing_is_checked_or_hashed() -> None:
    world = SecretWorld(readable=False, secrets=DB)
    outcome = world.reconcile()
    assert outcome.failure is None and ("apply", "Deployment") in world.api.calls
    assert ("get", "Secret") not in world.api.calls
    assert not any(k.startswith(SECRET_HASH_PREFIX) for k in world.template_annotations())


def test_a_digest_keeps_no_value_and_is_keyed_by_the_secrets_uid() -> None:
    one = secret(password="hunter2")
    one["metadata"] |= {"uid": "u1", "resourceVersion": "5"}
    found = digest(one)
    assert found.keys == frozenset({"password"})
    assert "hunter2" not in repr(found) and one["data"]["password"] not in repr(found)
    other = secret(password="hunter2")
    other["metadata"] |= {"uid": "u2", "resourceVersion": "5"}
    assert digest(other).hash != found.hash  # not a plain hash anyone could try words on
    assert digest(one).hash == found.hash


@pytest.mark.parametrize("rotation", ["restart", "none"])
def test_the_advice_warns_when_env_mappings_never_update(rotation: str) -> None:
    from tests.unit.factories import make_doc

    from pythonapp_operator.advice import advise
    from pythonapp_operator.api.validation import validate_document

    app, problems = validate_document(make_doc(secrets=[{**DB[0], "rotation": rotation}]))
    assert app is not None and not problems
    said = [p for p in advise(app) if p.path == "spec.secrets[0].rotation"]
    assert bool(said) == (rotation == "none")


def test_a_secret_the_watch_has_not_delivered_yet_is_looked_up_not_called_missing() -> None:
    """A Secret applied with its app may reach the operator after the app: the cache says
    nothing of it, one GET finds it, and the app goes on (no SecretMissing flash)."""
    world = SecretWorld(secrets=DB)
    world.api.put(secret(password="one"))
    snap = world.snapshot()
    behind = Snapshot(snap.app, snap.children, snap.versions, snap.observed, {"db": None})
    outcome = reconcile(world.api, behind, world.memory, now=lambda: NOW, digests=world.digests)
    assert outcome.failure is None
    assert ("get", "Secret") in world.api.calls and ("apply", "Deployment") in world.api.calls


def test_a_secret_is_read_once_per_version_across_reconciles() -> None:
    """The digests passed in are the ones filled (an empty Digests is falsy: a reconcile that
    made its own read every Secret on every run, three GETs per new app on the dev cluster)."""
    world = SecretWorld(secrets=DB)
    world.api.put(secret(password="one"))
    world.sync()
    world.reconcile()
    assert len(world.digests) == 1
    world.memory.plan = None  # as after any replan: the digest is still known
    world.reconcile()
    assert ("get", "Secret") not in world.api.calls


def restarted(world: SecretWorld) -> None:
    """What a restarted (or newly elected) operator knows: the cache, nothing in memory."""
    world.digests = Digests()
    world.memory = Memory()
    world.api.calls.clear()


def recorded_versions(world: SecretWorld) -> dict[str, str]:
    dep = world.api.objects["Deployment", "team-a", "shop"]
    found: dict[str, str] = json.loads(dep["metadata"]["annotations"][SECRET_VERSIONS_ANNOTATION])
    return found


def converged(**spec: Any) -> SecretWorld:
    world = SecretWorld(**spec)
    world.api.put(secret(password="hunter2-rotated", user="app"))
    world.sync()
    assert world.reconcile().failure is None
    world.sync()
    world.reconcile()
    world.sync()
    return world


def test_the_deployment_records_the_version_its_secret_hash_was_read_at() -> None:
    world = converged(secrets=DB)
    rv = world.api.objects["Secret", "team-a", "db"]["metadata"]["resourceVersion"]
    assert recorded_versions(world) == {"db": rv}
    assert "hunter2" not in json.dumps(world.api.objects["Deployment", "team-a", "shop"])


@pytest.mark.parametrize("rotation", ["restart", "none"])
def test_a_restarted_operator_reads_no_unchanged_secret(rotation: str) -> None:
    world = converged(secrets=[{**DB[0], "rotation": rotation}])
    restarted(world)
    outcome = world.reconcile()
    assert outcome.failure is None
    assert world.api.calls == []  # no read, no write: the Deployment says what was read
    assert len(world.digests) == 1  # and other apps naming the Secret share it


def test_after_a_restart_a_changed_secret_is_read_and_rolls() -> None:
    world = converged(secrets=DB)
    before = world.template_annotations()[ANNOTATION]
    restarted(world)
    world.api.objects["Secret", "team-a", "db"]["data"] = secret(password="two")["data"]
    world.sync()
    world.reconcile()
    assert ("get", "Secret") in world.api.calls
    assert world.template_annotations()[ANNOTATION] != before
    rv = world.api.objects["Secret", "team-a", "db"]["metadata"]["resourceVersion"]
    assert recorded_versions(world) == {"db": rv}


def test_a_recalled_secret_is_read_for_a_key_the_deployment_does_not_map() -> None:
    world = converged(secrets=DB)
    restarted(world)
    world.edit_spec(secrets=[{"name": "db", "env": [{"name": "DB_USER", "key": "user"}]}])
    outcome = world.reconcile()
    assert outcome.failure is None and ("get", "Secret") in world.api.calls
    restarted(world)
    world.edit_spec(secrets=[{"name": "db", "env": [{"name": "NOPE", "key": "missing"}]}])
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "SecretMissing"
    assert ("get", "Secret") in world.api.calls  # read before saying so, never guessed


def test_a_recorded_version_that_does_not_parse_is_ignored() -> None:
    world = converged(secrets=DB)
    dep = world.api.objects["Deployment", "team-a", "shop"]
    dep["metadata"]["annotations"][SECRET_VERSIONS_ANNOTATION] = "{not json"
    world.sync()
    restarted(world)
    assert world.reconcile().failure is None
    assert ("get", "Secret") in world.api.calls
