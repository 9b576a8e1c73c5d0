"""An app whose operator-upgrade rollout waits for a slot (reason RolloutQueued), as Flux and
Argo CD read it: Current and Healthy, so a GitOps wait never hangs on the operator's own
pacing. The status is the operator's own computation on the ready fixture's Deployment state
(the live shape is checked in tests/e2e/test_rollouts.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from tests.gitops import status_fixtures
from tests.gitops.argocd import health
from tests.gitops.kstatus import verdicts

from pythonapp_operator.controller.status import compute_status

NOW = "2026-01-01T00:00:00Z"


def queued_app() -> dict[str, Any]:
    app = copy.deepcopy(status_fixtures.load("ready"))
    generation = app["metadata"]["generation"]
    deployment = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "x@sha256:ab"}]}}},
        "status": {
            "observedGeneration": 2,
            "replicas": 2,
            "readyReplicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }
    app["status"] = compute_status(
        generation=generation,
        problems=[],
        deployment=deployment,
        previous=app["status"],
        now=NOW,
        queued="the pods are rolled when a rollout slot frees (10 apps at a time).",
    )
    return app


def test_a_queued_app_is_ready_and_not_reconciling() -> None:
    conds = {c["type"]: c for c in queued_app()["status"]["conditions"]}
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("True", "RolloutQueued")
    assert conds["Reconciling"]["status"] == "False"
    assert conds["Stalled"]["status"] == "False"


def test_flux_reads_a_queued_app_as_current(tmp_path: Path) -> None:
    path = tmp_path / "queued.yaml"
    path.write_text(yaml.safe_dump(queued_app()))
    (read,) = verdicts([path])
    assert read["kstatus"]["status"] == "Current", read
    assert read["healthCheckExprs"]["status"] == "Current", read


def test_argo_cd_reads_a_queued_app_as_healthy() -> None:
    assert health(queued_app())["status"] == "Healthy"
