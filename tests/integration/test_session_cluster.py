"""The test session's cluster is its own (issue 17, finding 1: `make demo` then `make test` failed).

`make demo` leaves an operator running (``--all-namespaces``) on the user's dev cluster. Tests
that run operators of their own on that cluster see two operators (two events for one change,
statuses written by the other), so the session takes a dev cluster of its own, and refuses to
share one with the demo's operator when ``PYTHONAPP_DEV_STATE`` points both at the same one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import USER_STATE_DIR, Cluster, demo_operator_on

from pythonapp_operator import devcluster
from pythonapp_operator.devcluster.paths import (
    STATE_ENV,
    cache_root,
    default_state_dir,
    own_state_dir,
)


@pytest.mark.cluster
def test_the_session_runs_on_a_dev_cluster_of_its_own(cluster: Cluster) -> None:
    if not cluster.is_devcluster:
        pytest.skip(f"the cluster is the one KUBECONFIG_E2E names: {cluster.kubeconfig}")
    assert cluster.state_dir is not None
    if USER_STATE_DIR is None:
        assert cluster.state_dir == (cache_root() / "test").resolve()
        assert cluster.state_dir != (cache_root() / "dev").resolve()  # the demo's
    else:  # the user's choice stands
        assert cluster.state_dir == Path(USER_STATE_DIR).expanduser().resolve()
    # every devcluster call and subprocess of the session (the benchmark, `pythonapp dev`)
    # sees the same cluster
    assert Path(os.environ[STATE_ENV]).expanduser().resolve() == cluster.state_dir
    assert devcluster.kubeconfig_path() == cluster.kubeconfig
    assert demo_operator_on(cluster.state_dir) is None


@pytest.fixture
def stand_in_operator() -> Iterator[int]:
    """A process whose command line reads like the demo's `pythonapp operator`."""
    code = "import time; print('up', flush=True); time.sleep(60)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "operator", "--all-namespaces"], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"up\n"  # running (its /proc entry complete)
    yield proc.pid
    proc.kill()
    proc.wait()


def _record(demo_dir: Path, pid: int, cluster: Path | None) -> None:
    demo_dir.mkdir(parents=True, exist_ok=True)
    (demo_dir / "operator.pid").write_text(f"{pid}\n")
    if cluster is not None:
        (demo_dir / "cluster").write_text(f"{cluster}\n")


def test_the_demos_operator_is_found_on_its_cluster_only(
    tmp_path: Path, stand_in_operator: int
) -> None:
    demo, mine, other = tmp_path / "demo", tmp_path / "dev", tmp_path / "test"
    _record(demo, stand_in_operator, mine)
    assert demo_operator_on(mine, demo) == stand_in_operator
    assert demo_operator_on(other, demo) is None


def test_a_demo_without_a_cluster_record_ran_on_the_default_dev_cluster(
    tmp_path: Path, stand_in_operator: int
) -> None:
    demo = tmp_path / "demo"
    _record(demo, stand_in_operator, None)
    assert demo_operator_on(cache_root() / "dev", demo) == stand_in_operator
    assert demo_operator_on(tmp_path / "test", demo) is None


def test_a_stopped_demo_or_a_reused_pid_is_no_demo(tmp_path: Path) -> None:
    demo, mine = tmp_path / "demo", tmp_path / "dev"
    assert demo_operator_on(mine, demo) is None  # no demo ever
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _record(demo, dead.pid, mine)
    assert demo_operator_on(mine, demo) is None
    _record(demo, os.getpid(), mine)  # alive, but not an operator
    assert demo_operator_on(mine, demo) is None


def test_own_state_dirs_are_apart_from_the_dev_cluster_unless_the_user_chose(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(STATE_ENV, raising=False)
    monkeypatch.setenv("PYTHONAPP_CACHE", str(tmp_path))
    assert own_state_dir("test") == tmp_path / "test"
    assert own_state_dir("bench") == tmp_path / "bench"
    assert default_state_dir() == tmp_path / "dev"  # the demo's, `pythonapp dev kubeconfig`
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "mine"))
    assert own_state_dir("test") == own_state_dir("bench") == tmp_path / "mine"
