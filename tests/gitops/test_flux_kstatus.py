"""How Flux reads a PythonApp, asked of Flux's own libraries (the Go checker in kstatus/).

kstatus (sigs.k8s.io/cli-utils, and Flux's fork of it) on the objects captured from the
operator: Current when Ready, InProgress while reconciling or when the generation is stale,
Failed when Stalled, and Current for an object with no status at all: the trap that lets a
plain Flux `wait: true` pass before the operator has done anything. The healthCheckExprs entry
in deploy/flux/ closes it; here it runs in Flux's own CEL status reader.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.gitops import status_fixtures
from tests.gitops.kstatus import FLUX_EXAMPLE, verdicts

STATES = sorted(status_fixtures.STATES)

#: state -> (kstatus, Flux with the shipped healthCheckExprs)
EXPECTED = {
    "ready": ("Current", "Current"),
    "rolling-out": ("InProgress", "InProgress"),
    "stalled-invalid-spec": ("Failed", "Failed"),
    "stalled-progress-deadline": ("Failed", "Failed"),
    "stale-generation": ("InProgress", "InProgress"),
    # kstatus: Current (the trap). The expressions cannot be evaluated without a status, which
    # Flux reports as Unknown: not Current, so `wait: true` keeps waiting.
    "no-status": ("Current", "Unknown"),
    # a route no controller answered does not hold a GitOps sync; a refused one fails it
    "ready-route-waiting": ("Current", "Current"),
    "stalled-route-not-accepted": ("Failed", "Failed"),
    "cron-scheduled": ("Current", "Current"),
    "stalled-cron-run-failed": ("Failed", "Failed"),
}


@pytest.fixture(scope="module")
def read() -> dict[str, dict[str, Any]]:
    files = [status_fixtures.path(s) for s in STATES]
    return dict(zip(STATES, verdicts(files), strict=True))


def test_every_state_has_an_expectation() -> None:
    assert set(EXPECTED) == set(status_fixtures.STATES)


@pytest.mark.parametrize("state", STATES)
def test_kstatus_reads_the_captured_state(read: dict[str, dict[str, Any]], state: str) -> None:
    assert read[state]["kstatus"]["status"] == EXPECTED[state][0], read[state]


@pytest.mark.parametrize("state", STATES)
def test_fluxs_kstatus_fork_agrees(read: dict[str, dict[str, Any]], state: str) -> None:
    assert read[state]["fluxKstatus"] == read[state]["kstatus"]


@pytest.mark.parametrize("state", STATES)
def test_shipped_health_check_exprs(read: dict[str, dict[str, Any]], state: str) -> None:
    assert read[state]["healthCheckExprs"]["status"] == EXPECTED[state][1], read[state]


def test_kstatus_carries_the_operators_message_when_stalled(
    read: dict[str, dict[str, Any]],
) -> None:
    for state in [s for s in STATES if s.startswith("stalled-")]:
        stalled = next(
            c for c in status_fixtures.load(state)["status"]["conditions"] if c["type"] == "Stalled"
        )
        assert read[state]["kstatus"]["message"] == stalled["message"]


def test_the_trap_an_object_without_status_is_current_for_kstatus(
    read: dict[str, dict[str, Any]],
) -> None:
    """Documented in deploy/flux/README.md: without the healthCheckExprs entry, Flux's
    `wait: true` passes for a PythonApp the operator has not reconciled (yet)."""
    assert read["no-status"]["kstatus"] == {"status": "Current", "message": "Resource is current"}
    exprs = read["no-status"]["healthCheckExprs"]
    assert exprs["status"] == "Unknown" and "status" in exprs["error"], exprs


def _variant(tmp_path: Path, obj: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(obj))
    (result,) = verdicts([path])
    return result


def test_exprs_need_observed_generation(tmp_path: Path) -> None:
    """Ready=True without observedGeneration is not Current (kstatus alone would say so)."""
    obj = copy.deepcopy(status_fixtures.load("ready"))
    del obj["status"]["observedGeneration"]
    result = _variant(tmp_path, obj)
    assert result["kstatus"]["status"] == "Current"
    assert result["healthCheckExprs"]["status"] == "InProgress"


def test_exprs_need_ready_true(tmp_path: Path) -> None:
    """All conditions False (nothing reconciling, nothing stalled, not ready) is not Current."""
    obj = copy.deepcopy(status_fixtures.load("ready"))
    for c in obj["status"]["conditions"]:
        c["status"] = "False"
    assert _variant(tmp_path, obj)["healthCheckExprs"]["status"] == "InProgress"


def test_the_entry_names_the_pythonapp_kind() -> None:
    spec = yaml.safe_load(FLUX_EXAMPLE.read_text())["spec"]
    (entry,) = spec["healthCheckExprs"]
    assert (entry["apiVersion"], entry["kind"]) == ("pythonapp.dev/v1alpha1", "PythonApp")
    assert {"current", "inProgress", "failed"} <= entry.keys()
    assert spec["wait"] is True
