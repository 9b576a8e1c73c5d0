"""handlers: kopf runs the process and serves no resources (the informers watch)."""

from __future__ import annotations

import kopf

from pythonapp_operator.controller.handlers import tune


def test_kopf_never_scans_the_cluster() -> None:
    """kopf must not list/watch Namespaces or CRDs in either mode: the namespaced installation
    grants nothing cluster-wide (deploy/overlays/namespaced), and the PythonApp informer
    notices the CRD by itself."""
    settings = kopf.OperatorSettings()
    assert settings.scanning.disabled is False  # kopf's default, which would need the grant
    tune(settings)
    assert settings.scanning.disabled is True
    assert settings.posting.enabled is False  # no log line becomes an Event (a write)


def test_kopf_has_no_resource_handlers() -> None:
    """Every kind is watched by the controller's informers; a kopf handler would watch it a
    second time (and kopf would list it once more at every start)."""
    registry = kopf.get_default_registry()
    assert not list(registry._watching.get_all_handlers())
    assert not list(registry._changing.get_all_handlers())
