"""Fixtures for tests that need a real API server (tests/integration, tests/e2e, tests/deploy).

The cluster is session-scoped: started once (``devcluster.up()``, which is idempotent and fast when
the cluster already runs) and shared; tests isolate themselves with a fresh namespace each.

* The session's dev cluster is its own, ``~/.cache/pythonapp-operator/test``, never the user's
  default dev cluster: ``make demo`` leaves an operator running there, and tests that run
  operators of their own on a cluster where another operator acts see two (two events,
  statuses written by the other). ``PYTHONAPP_DEV_STATE`` is set for the whole session, so every
  ``devcluster`` call and every subprocess (``pythonapp dev``, the benchmark) sees the same
  cluster. A ``PYTHONAPP_DEV_STATE`` set by the user still chooses; the session then refuses a
  cluster on which the demo's operator runs.
* ``KUBECONFIG_E2E=/path`` runs the same tests against any other cluster (kind, ...), and then
  ``pythonapp dev`` is not touched at all.
* The cluster is left running after the session, so the next run starts in a second instead of
  a minute (``make test-down`` stops it). ``PYTHONAPP_DEV_KEEP=0`` tears it down at the end of
  the session instead (only the session's cluster: never the demo's).
* A cluster that cannot be had is a test *failure* in CI (``CI=true``), never a skip; locally it
  is a skip that says how to get one.
* The real node (tests marked ``realnode``, fixture ``real_node``) is opt-in:
  ``PYTHONAPP_REAL_NODE=1``, which ``make test`` sets on a machine that allows it (root, with
  the packages of scripts/realnode-packages.sh, which it installs first). It is added to the
  session's cluster when the first such test asks for it and kept with the cluster. Without the
  opt-in, or on a machine that cannot run it, those tests fail saying how to get it.

Hypothesis runs under a profile chosen by ``HYPOTHESIS_PROFILE``: ``ci`` (the default, what
``make test`` runs) draws a fixed sequence (derandomized, no example database), so a run is
reproducible and a failure in CI is the same failure locally; ``chaos`` draws ten times as many
examples, randomly, for ``make chaos``. Tests that set ``max_examples`` themselves keep it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from pythonapp_operator import devcluster
from pythonapp_operator.devcluster import binaries, pause
from pythonapp_operator.devcluster.paths import STATE_ENV, cache_root, own_state_dir

T = TypeVar("T")

HYPOTHESIS_PROFILE_ENV = "HYPOTHESIS_PROFILE"
_FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=100,
    deadline=None,
    suppress_health_check=_FIXTURE_OK,
)
settings.register_profile(
    "chaos", database=None, max_examples=1000, deadline=None, suppress_health_check=_FIXTURE_OK
)
settings.load_profile(os.environ.get(HYPOTHESIS_PROFILE_ENV, "ci"))
E2E_ENV = "KUBECONFIG_E2E"
KEEP_ENV = "PYTHONAPP_DEV_KEEP"
REAL_NODE_ENV = "PYTHONAPP_REAL_NODE"
#: the dev cluster the user's environment names (None: the defaults), before the session
#: names its own
USER_STATE_DIR = os.environ.get(STATE_ENV)


def pytest_configure(config: pytest.Config) -> None:
    """The session's own dev cluster, for every ``devcluster`` call and every subprocess."""
    os.environ[STATE_ENV] = str(own_state_dir("test"))


def demo_operator_on(state_dir: Path, demo_dir: Path | None = None) -> int | None:
    """The pid of the operator ``make demo`` left running, if it acts on the dev cluster in
    ``state_dir`` (scripts/demo.sh records its cluster and the operator's pid in ``demo_dir``;
    a demo from before the record used the default dev cluster)."""
    demo_dir = demo_dir or cache_root() / "demo"
    try:
        pid = int((demo_dir / "operator.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    try:
        cluster = Path((demo_dir / "cluster").read_text().strip())
    except OSError:
        cluster = cache_root() / "dev"
    if b"operator" not in cmdline or cluster.resolve() != state_dir.resolve():
        return None
    return pid


@dataclass(frozen=True)
class Cluster:
    """The cluster under test: its admin kubeconfig and whether it is our dev cluster."""

    kubeconfig: Path
    is_devcluster: bool
    state_dir: Path | None


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    msg = (
        f"no Kubernetes cluster for the tests marked `cluster`: {reason}\n"
        "Get one with `pythonapp dev up` (local control plane, no Docker needed), or point "
        f"{E2E_ENV} at another cluster's kubeconfig (e.g. kind)."
    )
    if _in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _live_log(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """Show start-up progress live, even under output capture."""
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")

    def log(line: str) -> None:
        if capman is not None:
            with capman.global_and_fixture_disabled():
                print(line, flush=True)
        else:
            print(line, flush=True)

    return log


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """A running cluster for the whole session (see the module docstring for the choices)."""
    external = os.environ.get(E2E_ENV)
    if external:
        path = Path(external).expanduser()
        if not path.is_file():
            _unavailable(f"{E2E_ENV}={external} does not exist")
        yield Cluster(path, is_devcluster=False, state_dir=None)
        return

    log = _live_log(pytestconfig)
    state_dir = devcluster.kubeconfig_path().parent
    demo = demo_operator_on(state_dir)
    if demo is not None:
        pytest.fail(
            f"the demo's operator (pid {demo}, `make demo`) acts on the dev cluster the tests "
            f"would use ({state_dir}, from {STATE_ENV}), and the tests would see two operators: "
            f"unset {STATE_ENV} (the tests then use a cluster of their own) or stop the demo "
            "(`make demo-down`)",
            pytrace=False,
        )
    problem = None
    try:
        devcluster.up(log=log)
    except devcluster.DevClusterError as e:
        problem = str(e)
    if problem is not None:  # reported outside the except block: no chained traceback
        _unavailable(problem)
    yield Cluster(devcluster.kubeconfig_path(), is_devcluster=True, state_dir=state_dir)
    if os.environ.get(KEEP_ENV, "1") == "0":
        devcluster.down()


@dataclass(frozen=True)
class RealNode:
    """The session cluster's real node: what a test needs to put a pod on it."""

    name: str
    node_ip: str
    subnet: str
    bridge: str
    pause_image: str
    """Imported into its containerd: runs with imagePullPolicy Never, no registry needed."""

    def pod_spec(self, **extra: Any) -> dict[str, Any]:
        """Scheduling onto the real node: its label selected, its taint tolerated."""
        key, value = devcluster.realnode.LABEL
        return {
            "nodeSelector": {key: value},
            "tolerations": [{"key": key, "operator": "Exists", "effect": "NoSchedule"}],
            **extra,
        }


def real_node_refusal() -> str | None:
    """Why this session may not start the real node (None: it may)."""
    if os.environ.get(REAL_NODE_ENV) != "1":
        return (
            f"the real node is opt-in: set {REAL_NODE_ENV}=1 as root (`make test` does, when "
            "run as root, after installing its Debian packages with "
            "`bash scripts/realnode-packages.sh`); or deselect these tests: -m 'not realnode'"
        )
    return None


@pytest.fixture(scope="session")
def real_node(cluster: Cluster, pytestconfig: pytest.Config) -> RealNode:
    """The real node of the session's dev cluster, added when first asked for."""
    if not cluster.is_devcluster:
        pytest.fail(
            f"the real-node tests need `pythonapp dev`'s real node; {E2E_ENV} points at another "
            "cluster: unset it, or deselect these tests with -m 'not realnode'",
            pytrace=False,
        )
    refusal = real_node_refusal()
    if refusal is not None:
        pytest.fail(refusal, pytrace=False)
    problem = None
    try:
        st = devcluster.up(log=_live_log(pytestconfig), real_node=True)
    except devcluster.DevClusterError as e:
        problem = str(e)
    if problem is not None or st.real_node is None:
        pytest.fail(f"no real node: {problem}", pytrace=False)
    rn = st.real_node
    return RealNode(rn["name"], rn["node_ip"], rn["subnet"], rn["bridge"], pause.REF)


@pytest.fixture(scope="session")
def kubeconfig_path(cluster: Cluster) -> Path:
    """Admin kubeconfig of the cluster under test."""
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def kubectl() -> Path:
    """The kubectl built with the control plane (1.36); the system one may be too old."""
    found = binaries.find()
    if found is not None:
        return found.kubectl
    system = shutil.which("kubectl")
    if system is None:
        pytest.fail("no kubectl: run `pythonapp dev up` (it builds one)", pytrace=False)
    return Path(system)


@pytest.fixture(scope="session")
def api_client(kubeconfig_path: Path) -> Iterator[client.ApiClient]:
    """An admin ApiClient (client certificate in system:masters on the dev cluster)."""
    api = config.new_client_from_config(config_file=str(kubeconfig_path))
    yield api
    api.close()


@pytest.fixture(scope="session")
def core_v1(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps_v1(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def rbac_v1(api_client: client.ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(api_client)


@pytest.fixture(scope="session")
def apiextensions_v1(api_client: client.ApiClient) -> client.ApiextensionsV1Api:
    return client.ApiextensionsV1Api(api_client)


@pytest.fixture(scope="session")
def custom_objects(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def http_status(call: Callable[[], object], expected: tuple[int, ...] = (403, 404)) -> int:
    """200 when ``call`` succeeds, else the HTTP status of an expected refusal (others raise)."""
    try:
        call()
    except ApiException as e:
        if e.status in expected:
            return int(e.status)
        raise
    return 200


def wait_for(check: Callable[[], T], timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def wait_until() -> Callable[..., Any]:
    """``wait_until(check, timeout=60, what="...")``: poll until truthy or fail the test."""
    return wait_for


def _fresh_namespace(hint: str, core_v1: client.CoreV1Api) -> str:
    """Create ``t-<hint>-<random>`` and return once its ``default`` ServiceAccount exists:
    before that the ServiceAccount admission plugin refuses pods."""
    base = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:40].strip("-")
    name = f"t-{base}-{secrets.token_hex(3)}"
    core_v1.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"pythonapp.dev/test": "true"})
        )
    )

    wait_for(
        lambda: (
            http_status(lambda: core_v1.read_namespaced_service_account("default", name)) == 200
        ),
        60,
        f"ServiceAccount default in {name}",
    )
    return name


def _delete_namespace(name: str, core_v1: client.CoreV1Api) -> None:
    try:
        core_v1.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise


@pytest.fixture
def namespace(request: pytest.FixtureRequest, core_v1: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (deletion is not awaited)."""
    name = _fresh_namespace(request.node.name, core_v1)
    yield name
    _delete_namespace(name, core_v1)


@pytest.fixture(scope="module")
def namespace_for_module(
    request: pytest.FixtureRequest, core_v1: client.CoreV1Api
) -> Iterator[str]:
    """One fresh namespace shared by a module's tests (for read-only or dry-run checks)."""
    name = _fresh_namespace(request.module.__name__.rsplit(".", 1)[-1], core_v1)
    yield name
    _delete_namespace(name, core_v1)
