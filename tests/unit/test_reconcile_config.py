"""ConfigMaps (spec.config) checked before pods fail and rotated per reference, and image pull
Secrets (spec.imagePullSecrets) checked but never read nor rotated: reconcile on the in-memory
fake (tests/e2e/test_config.py proves them on the real API server)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from tests.unit.factories import make_doc
from tests.unit.test_reconcile_secrets import SecretWorld, secret

from pythonapp_operator.advice import advise
from pythonapp_operator.api.models import PythonApp
from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.controller.secretrefs import configmap_digest
from pythonapp_operator.render import (
    CONFIG_HASH_PREFIX,
    CONFIG_VERSIONS_ANNOTATION,
    migration_job,
)

ANNOTATION = CONFIG_HASH_PREFIX + "config-settings"
SETTINGS = [{"name": "settings", "env": [{"name": "LOG_LEVEL", "key": "log-level"}]}]


def configmap(name: str = "settings", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "team-a"},
        "data": dict(data),
    }


def deployment(world: SecretWorld) -> dict[str, Any]:
    found: dict[str, Any] = world.api.objects["Deployment", "team-a", "shop"]
    return found


def test_a_missing_configmap_creates_nothing_and_resolves_by_itself() -> None:
    world = SecretWorld(config=SETTINGS)
    outcome = world.reconcile()
    assert [c for c in world.api.writes() if c[0] == "apply"] == []
    assert outcome.failure is not None and outcome.failure.reason == "ConfigMissing"
    ready = world.condition("Ready")
    assert ready["reason"] == "ConfigMissing" and ready["status"] == "False"
    assert "ConfigMap settings (spec.config[0]) does not exist" in ready["message"]
    assert "fix spec.config" in ready["message"]
    assert world.condition("Stalled")["status"] == "False"
    world.api.put(configmap(**{"log-level": "info"}))
    world.sync()
    assert world.reconcile().failure is None
    assert ANNOTATION in world.template_annotations()
    env = deployment(world)["spec"]["template"]["spec"]["containers"][0]["env"]
    ref = {"configMapKeyRef": {"name": "settings", "key": "log-level"}}
    assert {"name": "LOG_LEVEL", "valueFrom": ref} in env


def test_a_missing_key_is_named_and_binary_data_does_not_count_as_one() -> None:
    world = SecretWorld(config=SETTINGS)
    cm = configmap(other="x")
    cm["binaryData"] = {"log-level": "aW5mbw=="}  # configMapKeyRef reads data only
    world.api.put(cm)
    world.sync()
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "ConfigMissing"
    assert "ConfigMap settings has no key log-level (spec.config[0].env)" in outcome.failure.message


def test_a_missing_secret_and_configmap_are_both_named_the_secret_first() -> None:
    world = SecretWorld(secrets=[{"name": "db"}], config=SETTINGS)
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "SecretMissing"
    assert "Secret db (spec.secrets[0])" in outcome.failure.message
    assert "ConfigMap settings (spec.config[0])" in outcome.failure.message
    assert "fix spec.secrets or spec.config" in outcome.failure.message


def test_a_spec_change_onto_a_missing_configmap_does_not_roll() -> None:
    world = SecretWorld()
    world.reconcile()
    world.sync()
    before = copy.deepcopy(deployment(world)["spec"])
    world.edit_spec(config=SETTINGS)
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "ConfigMissing"
    assert "the running version keeps serving" in outcome.failure.message
    assert deployment(world)["spec"] == before
    assert not [c for c in world.api.calls if c[0] == "apply"]


def test_a_data_change_rolls_once_with_rotation_restart() -> None:
    world = SecretWorld(config=SETTINGS)
    world.api.put(configmap(**{"log-level": "info"}))
    world.sync()
    world.reconcile()
    world.sync()
    first = world.template_annotations()[ANNOTATION]
    world.reconcile()
    assert world.api.calls == []
    world.api.objects["ConfigMap", "team-a", "settings"]["metadata"]["labels"] = {"a": "b"}
    world.sync()
    world.reconcile()
    assert world.api.writes() == []  # a new version, the same data: no roll
    world.api.objects["ConfigMap", "team-a", "settings"]["data"] = {"log-level": "debug"}
    world.sync()
    world.reconcile()
    assert world.api.writes() == [("apply", "Deployment")]
    assert world.template_annotations()[ANNOTATION] != first
    world.sync()
    world.reconcile()
    assert world.api.writes() == []
    rv = world.api.objects["ConfigMap", "team-a", "settings"]["metadata"]["resourceVersion"]
    recorded = json.loads(deployment(world)["metadata"]["annotations"][CONFIG_VERSIONS_ANNOTATION])
    assert recorded == {"settings": rv}


def test_rotation_none_reads_nothing_and_never_rolls() -> None:
    world = SecretWorld(config=[{"name": "settings", "rotation": "none"}])
    world.api.put(configmap(**{"log-level": "info"}))
    world.sync()
    assert world.reconcile().failure is None
    world.sync()
    world.api.objects["ConfigMap", "team-a", "settings"]["data"] = {"log-level": "debug"}
    world.sync()
    world.reconcile()
    assert ("get", "ConfigMap") not in world.api.calls  # existence is the watch's word
    assert world.api.writes() == []
    assert not any(k.startswith(CONFIG_HASH_PREFIX) for k in world.template_annotations())


def test_a_configmap_and_a_secret_of_one_name_are_hashed_apart() -> None:
    world = SecretWorld(secrets=[{"name": "settings"}], config=[{"name": "settings"}])
    world.api.put(configmap(**{"log-level": "info"}))
    world.api.put(secret("settings", password="x"))
    world.sync()
    assert world.reconcile().failure is None
    annotations = world.template_annotations()
    assert {CONFIG_HASH_PREFIX + "config-settings", CONFIG_HASH_PREFIX + "secret-settings"} <= set(
        annotations
    )


def test_without_rights_to_read_configmaps_nothing_is_checked_or_hashed() -> None:
    world = SecretWorld(config_readable=False, config=SETTINGS)
    outcome = world.reconcile()
    assert outcome.failure is None and ("apply", "Deployment") in world.api.calls
    assert ("get", "ConfigMap") not in world.api.calls
    assert not any(k.startswith(CONFIG_HASH_PREFIX) for k in world.template_annotations())


def test_a_restarted_operator_reads_no_unchanged_configmap() -> None:
    world = SecretWorld(config=SETTINGS)
    world.api.put(configmap(**{"log-level": "info"}))
    world.sync()
    world.reconcile()
    world.sync()
    world.reconcile()
    world.sync()
    world.config_digests = type(world.config_digests)()  # type: ignore[misc]
    world.memory = type(world.memory)()
    world.api.calls.clear()
    assert world.reconcile().failure is None
    assert world.api.calls == []  # the Deployment records what was read


def test_a_configmap_digest_covers_binary_data_and_keeps_no_value() -> None:
    one = configmap(**{"log-level": "info"})
    one["metadata"] |= {"uid": "u1", "resourceVersion": "3"}
    two = copy.deepcopy(one)
    two["binaryData"] = {"logo.png": "iVBORw0K"}
    assert configmap_digest(one).hash != configmap_digest(two).hash
    assert configmap_digest(two).keys == frozenset({"log-level"})
    assert "info" not in repr(configmap_digest(one))


@pytest.mark.parametrize("rotation", ["restart", "none"])
def test_the_advice_warns_when_config_env_mappings_never_update(rotation: str) -> None:
    app, problems = validate_document(make_doc(config=[{**SETTINGS[0], "rotation": rotation}]))
    assert app is not None and not problems
    said = [p for p in advise(app) if p.path == "spec.config[0].rotation"]
    assert bool(said) == (rotation == "none")


# -- image pull Secrets ------------------------------------------------------------------------

PULL = [{"name": "regcred"}]


def test_a_missing_pull_secret_is_named_and_nothing_is_created() -> None:
    world = SecretWorld(imagePullSecrets=PULL)
    outcome = world.reconcile()
    assert outcome.failure is not None and outcome.failure.reason == "SecretMissing"
    assert "Secret regcred (spec.imagePullSecrets[0]) does not exist" in outcome.failure.message
    assert "fix spec.imagePullSecrets" in outcome.failure.message
    assert [c for c in world.api.writes() if c[0] == "apply"] == []
    assert ("get", "Secret") not in world.api.calls  # never read, only looked at (metadata)
    assert ("get_metadata", "Secret") in world.api.calls
    world.api.put(secret("regcred", **{".dockerconfigjson": "{}"}))
    world.sync()
    assert world.reconcile().failure is None
    pod = deployment(world)["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]


def test_a_pull_secret_the_watch_has_not_delivered_yet_is_found_by_its_metadata() -> None:
    world = SecretWorld(imagePullSecrets=PULL)
    world.api.put(secret("regcred", **{".dockerconfigjson": "{}"}))
    snap = world.snapshot()
    world.readable = True
    behind = type(snap)(snap.app, snap.children, snap.versions, snap.observed, {"regcred": None})
    world.snapshot = lambda: behind  # type: ignore[method-assign]
    assert world.reconcile().failure is None
    assert ("get_metadata", "Secret") in world.api.calls and (
        "get",
        "Secret",
    ) not in world.api.calls


def test_a_pull_secret_change_rolls_nothing_and_reads_nothing() -> None:
    world = SecretWorld(imagePullSecrets=PULL)
    world.api.put(secret("regcred", **{".dockerconfigjson": "{}"}))
    world.sync()
    world.reconcile()
    world.sync()
    world.reconcile()
    world.sync()
    template = copy.deepcopy(deployment(world)["spec"]["template"])
    world.api.objects["Secret", "team-a", "regcred"]["data"] = secret(
        "regcred", **{".dockerconfigjson": '{"auths": {}}'}
    )["data"]
    world.sync()
    world.reconcile()
    assert world.api.writes() == [] and world.api.calls == []
    assert deployment(world)["spec"]["template"] == template


def test_the_migration_job_carries_the_pull_secrets_and_config() -> None:
    app = PythonApp.model_validate(
        make_doc(
            imagePullSecrets=PULL,
            config=SETTINGS,
            migrate={"command": ["python", "manage.py", "migrate"]},
        )
    )
    job = migration_job(app)
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    volume = {"name": "config-settings", "configMap": {"name": "settings", "defaultMode": 0o440}}
    assert volume in pod["volumes"]
    mounts = pod["containers"][0]["volumeMounts"]
    assert {
        "name": "config-settings",
        "mountPath": "/etc/config/settings",
        "readOnly": True,
    } in mounts
