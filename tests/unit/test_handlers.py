"""handlers.tune: kopf's settings per scope (the startup handler applies them)."""

from __future__ import annotations

import kopf

from pythonapp_operator.controller.handlers import tune


def test_namespaced_mode_switches_cluster_scanning_off() -> None:
    """With exact namespaces kopf must not list/watch Namespaces or CRDs: the namespaced
    installation grants nothing cluster-wide (deploy/overlays/namespaced)."""
    settings = kopf.OperatorSettings()
    assert settings.scanning.disabled is False  # kopf's default, which would need the grant
    tune(settings, clusterwide=False)
    assert settings.scanning.disabled is True


def test_cluster_wide_mode_keeps_scanning_on() -> None:
    """Cluster-wide, kopf keeps watching CRDs (the PythonApp CRD installed or upgraded later)."""
    settings = kopf.OperatorSettings()
    tune(settings, clusterwide=True)
    assert settings.scanning.disabled is False
    assert settings.posting.enabled is False  # the rest of tune() applies in both modes


def test_no_essence_is_built_or_stored_for_event_handlers() -> None:
    """kopf deep-copies every event's body for a diff only change handlers read; none here."""
    settings = kopf.OperatorSettings()
    tune(settings, clusterwide=True)
    storage = settings.persistence.diffbase_storage
    body = kopf.Body({"metadata": {"name": "shop", "managedFields": [{"manager": "x"}]}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=kopf.BodyEssence())
    assert not patch  # never an annotation written onto an object
