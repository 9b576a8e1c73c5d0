"""PythonApp objects captured from the real operator, one per state, and their "shape".

The files in tests/fixtures/status/ are what `kubectl get pythonapp -o yaml` returned while a
real operator ran against the real API server (tests/e2e/test_status_fixtures.py drives each
state and captures it). Only what changes from run to run is normalised away (namespace, uid,
resourceVersion, timestamps, managedFields), so a re-capture shows a real change as a small
diff. tests/gitops run the Argo CD health check and Flux's readers on them; the e2e test
checks that the live operator still produces each captured *shape*, so the fixtures cannot
silently go stale. Re-capture after an intended status change:

    UPDATE_STATUS_FIXTURES=1 .venv/bin/pytest tests/e2e/test_status_fixtures.py
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from pythonapp_operator.yamlio import dump_all, load_all

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "status"
UPDATE_ENV = "UPDATE_STATUS_FIXTURES"

#: every captured state: file stem -> what the object shows
STATES = {
    "ready": "converged: Ready=True, observedGeneration == generation",
    "rolling-out": "pods not yet available (unschedulable): Reconciling=True, Ready=False",
    "stalled-invalid-spec": "a spec that got past the CRD's validation: Stalled=True InvalidSpec",
    "stalled-progress-deadline": "the rollout passed its deadline: Stalled=True "
    "ProgressDeadlineExceeded",
    "stale-generation": "spec changed while the operator was down: Ready=True of generation 1, "
    "metadata.generation 2",
    "no-status": "applied while the operator was down: no status at all",
    "ready-route-waiting": "exposed (spec.expose) and Ready, no gateway controller has answered "
    "its HTTPRoute: status.route accepted Unknown, Ready=True",
    "stalled-route-not-accepted": "the Gateway's controller refused the app's HTTPRoute: "
    "Stalled=True RouteNotAccepted",
    "cron-scheduled": "a scheduled app (profile: cron) whose last run succeeded: Ready=True "
    "Scheduled, status.cron",
    "stalled-cron-run-failed": "a scheduled app whose last run failed: Stalled=True RunFailed",
}

NAMESPACE = "demo"
STABLE_TIME = "2026-01-01T00:00:00Z"


def path(state: str) -> Path:
    return FIXTURES / f"{state}.yaml"


def load(state: str) -> dict[str, Any]:
    (obj,) = load_all(path(state).read_text())
    result: dict[str, Any] = obj
    return result


def updating() -> bool:
    return os.environ.get(UPDATE_ENV) == "1"


def normalise(obj: dict[str, Any]) -> dict[str, Any]:
    """The captured object without what differs between two runs of the same scenario."""
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    namespace = meta.get("namespace", "")
    out["metadata"] = {"name": meta["name"], "namespace": NAMESPACE} | {
        key: meta[key] for key in ("generation", "labels", "annotations") if key in meta
    }
    status = out.get("status")
    if status:
        for cond in status.get("conditions") or []:
            if "lastTransitionTime" in cond:
                cond["lastTransitionTime"] = STABLE_TIME
            if namespace and isinstance(cond.get("message"), str):
                cond["message"] = cond["message"].replace(namespace, NAMESPACE)
        runs = status.get("cron") or {}
        for record in (runs, runs.get("lastRun") or {}):
            for key in ("lastScheduleTime", "lastSuccessfulTime", "startedAt", "finishedAt"):
                if key in record:
                    record[key] = STABLE_TIME
    return out


def write(state: str, obj: dict[str, Any]) -> None:
    header = f"# {STATES[state]}\n# captured by tests/e2e/test_status_fixtures.py; do not edit\n"
    path(state).write_text(header + dump_all([normalise(obj)]))


def _generation(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    if "observedGeneration" not in status:
        return "missing"
    observed, generation = status["observedGeneration"], obj["metadata"].get("generation")
    return "current" if observed == generation else f"stale by {generation - observed}"


def shape(obj: dict[str, Any]) -> dict[str, Any]:
    """What GitOps tools read: which status fields exist, each condition's type, status and
    reason and the keys it carries, and whether the status is of the current generation.
    Messages and counts are left out: they differ in wording, not in kind."""
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    return {
        "generation": _generation(obj),
        "fields": sorted(status),
        "conditions": [(c.get("type"), c.get("status"), c.get("reason")) for c in conditions],
        "condition_keys": sorted({key for c in conditions for key in c}),
    }
