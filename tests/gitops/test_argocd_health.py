"""deploy/argocd/health.lua, run as Argo CD runs it, on PythonApps captured from the operator.

| captured state             | Argo CD health | message                                   |
|----------------------------|----------------|-------------------------------------------|
| no status                  | Progressing    | Waiting for the operator to report ...    |
| observedGeneration < gen.  | Progressing    | Waiting for the operator to observe ...   |
| Stalled=True (any reason)  | Degraded       | Ready's message (else Stalled's)          |
| Ready=True                 | Healthy        | Ready's message                           |
| Reconciling=True           | Progressing    | Reconciling's message                     |
| Ready=False, nothing else  | Progressing    | Ready's message                           |
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from tests.gitops import status_fixtures
from tests.gitops.argocd import HEALTH_LUA, KEY, PATCH, health


def cond(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in obj["status"]["conditions"] if c["type"] == kind)
    return found


def test_argocd_cm_patch_embeds_the_script_verbatim() -> None:
    patch = yaml.safe_load(PATCH.read_text())
    assert patch["kind"] == "ConfigMap" and patch["metadata"]["name"] == "argocd-cm"
    assert set(patch["data"]) == {KEY}
    assert patch["data"][KEY] == HEALTH_LUA.read_text(), (
        f"{PATCH.name} no longer holds {HEALTH_LUA.name} verbatim: paste the script under {KEY}"
        " (indented four spaces)"
    )


def test_every_state_has_a_captured_object() -> None:
    captured = {p.stem for p in status_fixtures.FIXTURES.glob("*.yaml")}
    assert captured == set(status_fixtures.STATES)


def expected(state: str, obj: dict[str, Any]) -> tuple[str, str]:
    if state == "no-status":
        return "Progressing", "Waiting for the operator to report a status"
    if state == "stale-generation":
        return (
            "Progressing",
            "Waiting for the operator to observe generation 2 (it last reported on generation 1)",
        )
    if state.startswith("stalled-"):
        return "Degraded", cond(obj, "Ready")["message"]
    if state == "rolling-out":
        return "Progressing", cond(obj, "Reconciling")["message"]
    assert state in ("ready", "ready-route-waiting", "cron-scheduled")
    return "Healthy", cond(obj, "Ready")["message"]


@pytest.mark.parametrize("state", sorted(status_fixtures.STATES))
def test_captured_state_maps_to_the_right_health(state: str) -> None:
    obj = status_fixtures.load(state)
    status, message = expected(state, obj)
    assert health(obj) == {"status": status, "message": message}


def test_the_mapping_reads_the_conditions_not_the_reason_names() -> None:
    """New Stalled reasons (a conflict, a refused apply) are Degraded without a script change."""
    obj = copy.deepcopy(status_fixtures.load("stalled-invalid-spec"))
    for c in obj["status"]["conditions"]:
        c["reason"] = "NotOwned"
    assert health(obj)["status"] == "Degraded"


def test_stalled_message_is_used_when_ready_has_none() -> None:
    obj = copy.deepcopy(status_fixtures.load("stalled-progress-deadline"))
    del cond(obj, "Ready")["message"]
    assert health(obj) == {"status": "Degraded", "message": cond(obj, "Stalled")["message"]}


@pytest.mark.parametrize(
    "status",
    [{}, {"conditions": []}, {"observedGeneration": 1}],
    ids=["empty", "no-conditions", "generation-only"],
)
def test_a_status_without_conditions_is_progressing(status: dict[str, Any]) -> None:
    obj = {**status_fixtures.load("no-status"), "status": status}
    assert health(obj)["status"] == "Progressing"


def test_a_status_without_observed_generation_is_progressing() -> None:
    obj = copy.deepcopy(status_fixtures.load("ready"))
    del obj["status"]["observedGeneration"]
    assert health(obj) == {
        "status": "Progressing",
        "message": "Waiting for the operator to observe generation 1",
    }


def test_ready_false_alone_is_progressing_with_its_message() -> None:
    obj = copy.deepcopy(status_fixtures.load("rolling-out"))
    obj["status"]["conditions"] = [c for c in obj["status"]["conditions"] if c["type"] == "Ready"]
    assert health(obj) == {"status": "Progressing", "message": cond(obj, "Ready")["message"]}


def test_ready_unknown_is_progressing() -> None:
    obj = copy.deepcopy(status_fixtures.load("ready"))
    obj["status"]["conditions"] = [{"type": "Ready", "status": "Unknown"}]
    assert health(obj) == {"status": "Progressing", "message": "Waiting for the operator"}
