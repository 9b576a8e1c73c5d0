"""The mission's promises on running containers, and the failure reasons as a real kubelet
gives them: PythonApps reconciled by the session's operator, their pods on the dev cluster's
real node (namespace annotations put them there), running examples/app's image built without
Docker and pulled by digest from the cluster's loopback registry.

Every namespace here enforces Pod Security ``restricted``: each pod the operator renders in
these tests was admitted by it. The kubelet's pod statuses for each failure are captured under
tests/fixtures/pods/ (timestamps, addresses, ids and names replaced by fixed values), so the
kwok-based tests and the unit tests read the kubelet's own words; a change of their shape fails
here until re-captured:

    UPDATE_POD_FIXTURES=1 PYTHONAPP_REAL_NODE=1 \\
        .venv/bin/pytest -m cluster tests/e2e/test_real_pods.py

Marked ``realnode``: root only, opt-in with ``PYTHONAPP_REAL_NODE=1`` (tests/conftest.py).
Times (Ready, each reason's delay) are recorded as test properties, never asserted.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests import pod_fixtures
from tests.conftest import RealNode
from tests.e2e.conftest import Kubectl
from tests.e2e.test_operator import app_doc, condition, ready
from tests.operator_process import OperatorProcess

from pythonapp_operator.devcluster import DevClusterError, images, realnode, registry
from pythonapp_operator.render import CONTAINER_NAME

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]
Wait = Callable[..., Any]
Record = Callable[[str, object], None]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = pod_fixtures.FIXTURES
UPDATE_ENV = "UPDATE_POD_FIXTURES"
SECRET = "sample-app-api"  # the Secret examples/app reads (/run/secrets/sample-app-api/token)
#: generous but finite: the kubelet refreshes mounted Secrets within about 60-90 s
SECRET_REFRESH_BOUND = 180
READY_BOUND = 180
REASON_BOUND = 120


@pytest.fixture(scope="module")
def image(real_node: RealNode) -> str:
    """examples/app's image, built once for the module and pushed to the cluster's registry."""
    try:
        return images.build(
            ROOT / "examples" / "app", registry.of_cluster().address, "sample-app", log=print
        )
    except DevClusterError as e:
        pytest.fail(f"could not build examples/app's image: {e}", pytrace=False)


@pytest.fixture
def ns(real_node: RealNode, core_v1: client.CoreV1Api, namespace: str) -> str:
    """A namespace whose pods all land on the real node, enforcing Pod Security restricted."""
    core_v1.patch_namespace(
        namespace,
        {
            "metadata": {
                "annotations": realnode.namespace_annotations(),
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            }
        },
    )
    return namespace


def secret(namespace: str, name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def sample(namespace: str, image: str, name: str = "shop", **spec: Any) -> dict[str, Any]:
    """examples/app as a PythonApp: its Secret mounted, re-read every 2 s by the app."""
    doc = app_doc(
        namespace,
        name,
        image=image,
        secrets=[{"name": SECRET}],
        env=[{"name": "SECRET_REFRESH_SECONDS", "value": "2"}],
    )
    doc["spec"].update(spec)
    return doc


def pods(k: Kubectl, namespace: str, app: str = "shop") -> list[dict[str, Any]]:
    """The app's pods not being deleted."""
    out = k.run(
        "get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={app}", "-o", "json"
    )
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def pod_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def ready_pods(k: Kubectl, namespace: str, app: str = "shop") -> list[dict[str, Any]] | None:
    found = pods(k, namespace, app)
    return found if found and all(pod_ready(p) for p in found) else None


def py(k: Kubectl, namespace: str, pod: str, code: str) -> subprocess.CompletedProcess[str]:
    """Python code run in the pod's app container (the image has python3, no shell needed)."""
    return k.run(
        "exec", pod, "-n", namespace, "-c", CONTAINER_NAME, "--", "python3", "-c", code, check=False
    )


def timed(wait: Wait, check: Callable[[], Any], bound: float, what: str) -> tuple[Any, float]:
    started = time.monotonic()
    found = wait(check, bound, what)
    return found, round(time.monotonic() - started, 2)


def reason_is(k: Kubectl, namespace: str, reason: str, app: str = "shop") -> Any:
    found = k.get("pythonapp", app, namespace)
    return found if condition(found, "Ready").get("reason") == reason else None


def go_ready(
    k: Kubectl, namespace: str, wait: Wait, record: Record, *, what: str, app: str = "shop"
) -> dict[str, Any]:
    found, took = timed(wait, lambda: ready(k, namespace, app), READY_BOUND, f"{what} Ready")
    record(f"{what}_ready_seconds", took)
    assert all(p["spec"]["nodeName"] == realnode_name(k) for p in pods(k, namespace, app))
    return dict(found)


def realnode_name(k: Kubectl) -> str:
    out = k.run("get", "nodes", "-l", "=".join(realnode.LABEL), "-o", "name")
    return out.stdout.strip().removeprefix("node/")


# -- the promises on running containers -------------------------------------------------------


def test_the_sample_app_runs_as_promised_and_a_secret_changes_in_place(
    operator: OperatorProcess,
    *,
    k: Kubectl,
    ns: str,
    image: str,
    wait: Wait,
    record_property: Record,
) -> None:
    """Ready through its HTTP probes; uid 10001 on a read-only root with a writable /tmp; the
    Secret readable as a file; with ``rotation: none`` a changed Secret reaches that file in
    the same containers (no restart), and the app re-reads it."""
    k.apply(secret(ns, SECRET, token="first-token"))
    k.apply(sample(ns, image, secrets=[{"name": SECRET, "rotation": "none"}]))
    go_ready(k, ns, wait, record_property, what="sample_app")
    dep = k.get("deployment", "shop", ns)
    assert dep is not None
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health?probe=readiness"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    running = pods(k, ns)
    assert len(running) == 2
    name = running[0]["metadata"]["name"]

    ids = py(k, ns, name, "import os; print(os.getuid(), os.geteuid())")
    assert ids.returncode == 0, ids.stderr
    assert ids.stdout.split() == ["10001", "10001"]
    root = py(k, ns, name, "open('/x', 'w')")
    assert root.returncode != 0 and "Read-only file system" in root.stderr, root
    tmp = py(
        k,
        ns,
        name,
        "import pathlib; p = pathlib.Path('/tmp/t'); p.write_text('ok'); print(p.read_text())",
    )
    assert tmp.returncode == 0 and tmp.stdout.strip() == "ok", tmp
    path = f"/run/secrets/{SECRET}/token"
    read = f"print(open('{path}').read())"
    said = py(k, ns, name, read)
    assert said.returncode == 0 and said.stdout.strip() == "first-token", said

    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in running}
    k.apply(secret(ns, SECRET, token="second-token"))

    def updated() -> bool:
        return py(k, ns, name, read).stdout.strip() == "second-token"

    _, took = timed(wait, updated, SECRET_REFRESH_BOUND, f"the new value in {path}")
    record_property("secret_in_place_seconds", took)
    wait(
        lambda: "secret reloaded" in k.run("logs", name, "-n", ns, "-c", CONTAINER_NAME).stdout,
        30,
        "the app to re-read the file (every 2 s)",
    )
    after = pods(k, ns)
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in after} == before
    assert all(p["status"]["containerStatuses"][0]["restartCount"] == 0 for p in after)
    assert ready(k, ns) is not None


def test_a_changed_secret_rolls_the_pods_with_rotation_restart(
    operator: OperatorProcess,
    *,
    k: Kubectl,
    ns: str,
    image: str,
    wait: Wait,
    record_property: Record,
) -> None:
    k.apply(secret(ns, SECRET, token="first-token"))
    k.apply(sample(ns, image))  # rotation: restart, the default
    go_ready(k, ns, wait, record_property, what="sample_app")
    before = {p["metadata"]["name"] for p in pods(k, ns)}
    k.apply(secret(ns, SECRET, token="second-token"))

    def rolled() -> list[dict[str, Any]] | None:
        now = ready_pods(k, ns)
        if not now or {p["metadata"]["name"] for p in now} & before or len(now) != 2:
            return None
        return now if ready(k, ns) else None

    now, took = timed(wait, rolled, READY_BOUND, "new pods Ready after the Secret changed")
    record_property("secret_restart_rollout_seconds", took)
    said = py(
        k, ns, now[0]["metadata"]["name"], f"print(open('/run/secrets/{SECRET}/token').read())"
    )
    assert said.stdout.strip() == "second-token", said


WORKER_PROBE = ["python3", "-c", "import os, sys; sys.exit(not os.path.exists('/tmp/alive'))"]


def test_a_worker_with_exec_probes_runs_ready(
    operator: OperatorProcess,
    *,
    k: Kubectl,
    ns: str,
    image: str,
    wait: Wait,
    record_property: Record,
) -> None:
    """A worker (no port, no Service) whose readiness and liveness are commands the kubelet
    runs in the container: it goes Ready only once its command has written /tmp/alive."""
    command = [
        "python3",
        "-c",
        "import pathlib, time; time.sleep(3); pathlib.Path('/tmp/alive').touch(); time.sleep(3600)",
    ]
    probes = {"readiness": {"command": WORKER_PROBE}, "liveness": {"command": WORKER_PROBE}}
    k.apply(app_doc(ns, "jobs", image=image, profile="worker", command=command, probes=probes))
    go_ready(k, ns, wait, record_property, what="worker", app="jobs")
    # restricted is enforced here (a plain pod is refused), so the pods above were admitted
    plain = k.run("run", "plain", "-n", ns, f"--image={image}", check=False)
    assert plain.returncode != 0 and 'violates PodSecurity "restricted:latest"' in plain.stderr
    dep = k.get("deployment", "jobs", ns)
    assert dep is not None
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["exec"]["command"] == WORKER_PROBE
    assert "ports" not in container and k.get("service", "jobs", ns) is None
    for pod in pods(k, ns, "jobs"):
        (st,) = pod["status"]["containerStatuses"]
        assert st["ready"] and st["restartCount"] == 0
        assert py(k, ns, pod["metadata"]["name"], "open('/tmp/alive')").returncode == 0


def _log_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def _stamp(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(entry["time"])).timestamp()


@pytest.fixture
def followed() -> Iterator[list[subprocess.Popen[str]]]:
    """``kubectl logs -f`` processes a test starts, stopped if the test did not see them end."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_on_delete_comes_after_the_prestop_sleep_within_the_grace_period(
    operator: OperatorProcess,
    *,
    k: Kubectl,
    ns: str,
    image: str,
    wait: Wait,
    followed: list[subprocess.Popen[str]],
    record_property: Record,
) -> None:
    """The app's own log, followed before the delete: SIGTERM arrives after the 5 s preStop
    sleep, the app drains and stops cleanly before the 30 s grace period is over."""
    k.apply(secret(ns, SECRET, token="t"))
    k.apply(sample(ns, image, replicas=1))
    go_ready(k, ns, wait, record_property, what="sample_app")
    dep = k.get("deployment", "shop", ns)
    assert dep is not None
    spec = dep["spec"]["template"]["spec"]
    prestop = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = spec["terminationGracePeriodSeconds"]
    assert (prestop, grace) == (5, 30)
    (pod,) = pods(k, ns)
    name = pod["metadata"]["name"]
    proc = subprocess.Popen(
        [str(k.path), "--kubeconfig", str(k.kubeconfig), "logs", "-f", name, "-n", ns],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    followed.append(proc)
    assert proc.stdout is not None
    seen = ""
    while '"listening"' not in seen:  # following: the delete's effect cannot be missed
        line = proc.stdout.readline()
        assert line, f"kubectl logs -f ended early: {seen}"
        seen += line
    deleted_at = time.time()
    k.run("delete", "pod", name, "-n", ns, "--wait=false")
    try:
        rest, _ = proc.communicate(timeout=grace + 30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the log of {name} did not end within {grace + 30} s", pytrace=False)
    lines = _log_lines(seen + rest)
    by = {entry["message"]: entry for entry in lines}
    assert "draining" in by and "stopped" in by, lines
    assert by["draining"]["signal"] == "SIGTERM"
    assert by["stopped"]["clean"] is True
    sigterm_after = _stamp(by["draining"]) - deleted_at
    stopped_after = _stamp(by["stopped"]) - deleted_at
    record_property("sigterm_after_delete_seconds", round(sigterm_after, 2))
    record_property("stopped_after_delete_seconds", round(stopped_after, 2))
    # the promise itself, on one clock (the container's is the host's): SIGTERM only once the
    # preStop sleep is over (less a second for the delete's own round trip), and done in grace
    assert sigterm_after >= prestop - 1, (sigterm_after, lines)
    assert stopped_after < grace, (stopped_after, lines)


# -- failure reasons, as the kubelet gives them ------------------------------------------------

_VOLATILE_KEYS = {
    "startedAt": "2026-01-01T00:00:00Z",
    "finishedAt": "2026-01-01T00:00:01Z",
    "lastProbeTime": None,
    "lastTransitionTime": "2026-01-01T00:00:00Z",
    "startTime": "2026-01-01T00:00:00Z",
    "containerID": "containerd://" + "c" * 64,
    "imageID": "",
    "hostIP": "10.250.0.1",
    "podIP": "10.250.0.2",
}
_VOLATILE_LISTS = {"hostIPs": [{"ip": "10.250.0.1"}], "podIPs": [{"ip": "10.250.0.2"}]}
FIXED_REGISTRY = "127.0.0.1:5000"
FIXED_DIGEST = "sha256:" + "a" * 64
FIXED_NAMESPACE, FIXED_POD, FIXED_UID = (
    pod_fixtures.NAMESPACE,
    pod_fixtures.POD,
    pod_fixtures.POD_UID,
)


def scrub(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod's ``status`` with what changes per run replaced by fixed values."""
    meta = pod["metadata"]
    words = {
        meta["namespace"]: FIXED_NAMESPACE,
        meta["name"]: FIXED_POD,
        meta["uid"]: FIXED_UID,
        registry.of_cluster().address: FIXED_REGISTRY,
    }
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))
    digest = re.compile(r"sha256:[0-9a-f]{64}")

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key in _VOLATILE_KEYS and value is not None:
                    out[key] = _VOLATILE_KEYS[key]
                elif key in _VOLATILE_LISTS:
                    out[key] = _VOLATILE_LISTS[key]
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return digest.sub(FIXED_DIGEST, pattern.sub(lambda m: words[m.group(0)], node))
        return node

    scrubbed: dict[str, Any] = walk(pod["status"])
    return scrubbed


def shape(status: dict[str, Any]) -> dict[str, Any]:
    """What a fixture holds the kubelet to: phase, condition types/statuses/reasons, and each
    container's state kind, waiting reason and last termination's reason and exit code."""

    def container(c: dict[str, Any]) -> dict[str, Any]:
        state = c.get("state") or {}
        last = (c.get("lastState") or {}).get("terminated") or {}
        return {
            "name": c.get("name"),
            "state": sorted(state),
            "waiting": (state.get("waiting") or {}).get("reason"),
            "last": [last.get("reason"), last.get("exitCode")] if last else None,
            "fields": sorted(c),
        }

    return {
        "phase": status.get("phase"),
        "conditions": sorted(
            (c["type"], c["status"], c.get("reason", "")) for c in status.get("conditions") or []
        ),
        "containers": [container(c) for c in status.get("containerStatuses") or []],
    }


def hold_to_fixture(pod: dict[str, Any], fixture: str) -> dict[str, Any]:
    """Write the scrubbed status (``UPDATE_POD_FIXTURES=1``) or check the captured one still
    has the live status's shape. Returns the scrubbed live status."""
    status = scrub(pod)
    path = FIXTURES / fixture
    if os.environ.get(UPDATE_ENV) == "1":
        FIXTURES.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")
    if not path.exists():
        pytest.fail(f"no fixture {path}: capture it with {UPDATE_ENV}=1", pytrace=False)
    captured = json.loads(path.read_text())
    assert shape(captured) == shape(status), f"re-capture with {UPDATE_ENV}=1"
    return status


def a_pod(k: Kubectl, namespace: str, match: Callable[[dict[str, Any]], bool]) -> Any:
    for pod in pods(k, namespace):
        if match(pod):
            return pod
    return None


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


def waiting(reason: str, last: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def match(pod: dict[str, Any]) -> bool:
        c = _container(pod)
        said = ((c.get("state") or {}).get("waiting") or {}).get("reason")
        done = ((c.get("lastState") or {}).get("terminated") or {}).get("reason")
        return said == reason and (last is None or done == last)

    return match


def failing_worker(namespace: str, image: str, **spec: Any) -> dict[str, Any]:
    """A worker without probes: the container's own fate is all that shows."""
    return app_doc(namespace, image=image, profile="worker", **spec)


def test_a_digest_the_registry_lacks_says_imagepullbackoff(
    operator: OperatorProcess,
    *,
    k: Kubectl,
    ns: str,
    image: str,
    wait: Wait,
    record_property: Record,
) -> None:
    repo, digest = image.split("@", 1)
    absent = "sha256:" + ("0" if digest[-1] != "0" else "1") * 64
    k.apply(failing_worker(ns, f"{repo}@{absent}"))
    app, took = timed(
        wait, lambda: reason_is(k, ns, "ImagePullBackOff"), REASON_BOUND, "ImagePullBackOff"
    )
    record_property("imagepullbackoff_seconds", took)
    message = condition(app, "Ready")["message"]
    assert condition(app, "Stalled")["status"] == "True"
    pod = wait(lambda: a_pod(k, ns, waiting("ImagePullBackOff")), REASON_BOUND, "back-off")
    kubelet = _container(pod)["state"]["waiting"]["message"]
    assert absent in kubelet, kubelet
    assert re.match(r"\d of 2 pods: ImagePullBackOff: ", message), message
    assert absent in message, message  # the kubelet's words, with the digest it could not pull
    hold_to_fixture(pod, "imagepullbackoff.json")


def still_said(k: Kubectl, namespace: str, reason: str, seconds: float = 20) -> None:
    """The reason stays through the back-off (the container terminated, waiting, restarted):
    the PythonApp never goes back to Progressing in between."""
    since = time.monotonic()
    while time.monotonic() - since < seconds:
        found = k.get("pythonapp", "shop", namespace)
        assert condition(found, "Ready").get("reason") == reason, found


def crash_looping(last: str, code: int) -> Callable[[dict[str, Any]], bool]:
    """A container that exited ``code`` (``last``) at least once, as this kubelet shows it for
    most of its back-off: ``state.terminated`` (``waiting: CrashLoopBackOff`` only briefly)."""

    def match(pod: dict[str, Any]) -> bool:
        c = _container(pod)
        done = (c.get("state") or {}).get("terminated") or {}
        return (
            c.get("restartCount", 0) >= 1
            and done.get("reason") == last
            and done.get("exitCode") == code
        )

    return match


def test_a_crashing_command_is_captured_as_the_kubelet_reports_it(
    k: Kubectl, ns: str, image: str, wait: Wait, operator: OperatorProcess
) -> None:
    """The crash loop's pod statuses, held to (or captured as) the fixtures: the terminated
    state with exit code 3 (always), and ``waiting: CrashLoopBackOff`` if seen meanwhile."""
    k.apply(failing_worker(ns, image, command=["python3", "-c", "import sys; sys.exit(3)"]))
    seen: dict[str, dict[str, Any]] = {}

    def both() -> bool:
        for pod in pods(k, ns):
            if "terminated" not in seen and crash_looping("Error", 3)(pod):
                seen["terminated"] = pod
            if "waiting" not in seen and waiting("CrashLoopBackOff")(pod):
                seen["waiting"] = pod
        return len(seen) == 2

    try:
        wait(both, REASON_BOUND, "the waiting CrashLoopBackOff state")
    except pytest.fail.Exception:
        if "terminated" not in seen:
            raise
    hold_to_fixture(seen["terminated"], "crashloop-terminated.json")
    if "waiting" in seen:  # seen for moments only: held to the fixture when caught
        last = _container(seen["waiting"])["lastState"]["terminated"]
        assert (last["reason"], last["exitCode"]) == ("Error", 3)
        hold_to_fixture(seen["waiting"], "crashloopbackoff.json")


def test_a_crashing_command_says_crashloopbackoff_with_its_exit_code(
    operator: OperatorProcess,
    *,
    k: Kubectl,
    ns: str,
    image: str,
    wait: Wait,
    record_property: Record,
) -> None:
    k.apply(failing_worker(ns, image, command=["python3", "-c", "import sys; sys.exit(3)"]))
    wait(lambda: a_pod(k, ns, crash_looping("Error", 3)), REASON_BOUND, "a restart")

    def steady() -> Any:  # said, and still said a moment later: not flickering
        found = reason_is(k, ns, "CrashLoopBackOff")
        return (
            found if found and "last exit code 3" in condition(found, "Ready")["message"] else None
        )

    app, took = timed(wait, steady, 30, "CrashLoopBackOff with exit code 3")
    record_property("crashloopbackoff_after_restart_seconds", took)
    assert condition(app, "Stalled")["status"] == "True"
    still_said(k, ns, "CrashLoopBackOff")


def test_a_memory_limit_is_enforced_and_captured_as_oomkilled(
    k: Kubectl, ns: str, image: str, wait: Wait, operator: OperatorProcess
) -> None:
    k.apply(oom_worker(ns, image))
    pod = wait(lambda: a_pod(k, ns, crash_looping("OOMKilled", 137)), REASON_BOUND, "an OOM kill")
    hold_to_fixture(pod, "oomkilled.json")


def test_a_memory_limit_says_oomkilled_on_the_pythonapp(
    operator: OperatorProcess,
    *,
    k: Kubectl,
    ns: str,
    image: str,
    wait: Wait,
    record_property: Record,
) -> None:
    k.apply(oom_worker(ns, image))
    wait(lambda: a_pod(k, ns, crash_looping("OOMKilled", 137)), REASON_BOUND, "an OOM kill")

    def oom() -> Any:
        found = reason_is(k, ns, "CrashLoopBackOff")
        return found if "OOMKilled" in condition(found, "Ready").get("message", "") else None

    app, took = timed(wait, oom, 30, "CrashLoopBackOff calling out OOMKilled")
    record_property("oomkilled_after_kill_seconds", took)
    message = condition(app, "Ready")["message"]
    assert "was OOMKilled (exit code 137)" in message, message
    still_said(k, ns, "CrashLoopBackOff")


def oom_worker(namespace: str, image: str) -> dict[str, Any]:
    hog = "import time; b = b'x' * (200 << 20); time.sleep(3600)"
    return failing_worker(
        namespace, image, command=["python3", "-c", hog], resources={"limits": {"memory": "64Mi"}}
    )


def test_a_secret_key_gone_under_running_pods_says_createcontainerconfigerror(
    operator: OperatorProcess,
    *,
    k: Kubectl,
    ns: str,
    image: str,
    wait: Wait,
    record_property: Record,
) -> None:
    """The operator refuses to start pods on a missing key (SecretMissing), so the kubelet's
    error is reached the way it happens in production: the key deleted under running pods,
    then a pod replaced. The kubelet's words are on the new pod; the PythonApp says
    SecretMissing (the operator's check, naming the key), which wins over what pods say."""
    k.apply(secret(ns, "db", password="p"))
    sleeper = ["python3", "-c", "import time; time.sleep(3600)"]
    refs = [{"name": "db", "rotation": "none", "env": [{"name": "DB_PASSWORD", "key": "password"}]}]
    k.apply(failing_worker(ns, image, command=sleeper, secrets=refs))
    go_ready(k, ns, wait, record_property, what="worker_with_env")
    k.run(
        "patch",
        "secret",
        "db",
        "-n",
        ns,
        "--type=json",
        "-p",
        json.dumps([{"op": "remove", "path": "/data/password"}]),
    )
    started = time.monotonic()
    victim = pods(k, ns)[0]["metadata"]["name"]
    k.run("delete", "pod", victim, "-n", ns, "--wait=false")
    pod = wait(
        lambda: a_pod(k, ns, waiting("CreateContainerConfigError")),
        REASON_BOUND,
        "the new pod's CreateContainerConfigError",
    )
    record_property("createcontainerconfigerror_pod_seconds", round(time.monotonic() - started, 2))
    kubelet = _container(pod)["state"]["waiting"]["message"]
    assert kubelet == f"couldn't find key password in Secret {ns}/db", kubelet
    hold_to_fixture(pod, "createcontainerconfigerror.json")
    app = wait(lambda: reason_is(k, ns, "SecretMissing"), REASON_BOUND, "SecretMissing")
    assert "Secret db has no key password" in condition(app, "Ready")["message"]


# -- the migrations gate on a real kubelet ----------------------------------------------------

#: the migration checks, in the Job's own container, what the gate promises it shares with the
#: app's pods: the app's numeric user, a read-only root, the app's Secret as a file
MIGRATION_CHECKS = (
    "import os, pathlib\n"
    "assert os.getuid() == 10001, os.getuid()\n"
    "try:\n"
    "    open('/migrated', 'w')\n"
    "    raise SystemExit('the root filesystem is writable')\n"
    "except OSError:\n"
    "    pass\n"
    f"assert pathlib.Path('/run/secrets/{SECRET}/token').read_text() == 'migration-token'\n"
)


def app_pods(k: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    """The Deployment's pods (a ReplicaSet's) by uid: not the migration Jobs' pods, which carry
    the app's labels too."""
    return {
        p["metadata"]["uid"]: p
        for p in pods(k, namespace)
        if any(o["kind"] == "ReplicaSet" for o in p["metadata"].get("ownerReferences") or [])
    }


def test_a_migration_runs_on_the_real_node_first_and_a_failing_one_keeps_the_old_pods(
    operator: OperatorProcess,
    *,
    k: Kubectl,
    ns: str,
    image: str,
    wait: Wait,
    record_property: Record,
) -> None:
    """spec.migrate on a real kubelet: the Job runs the new image as the app's user on a
    read-only root with the app's Secret mounted (its checks exit non-zero otherwise), the
    Deployment comes after it; a migration whose command exits 3 stalls the app with
    MigrationFailed and the kubelet's exit code, while the pods already running keep serving."""
    k.apply(secret(ns, SECRET, token="migration-token"))
    checks = {"command": ["python3", "-c", MIGRATION_CHECKS], "backoffLimit": 0}
    k.apply(sample(ns, image, migrate=checks))
    app = go_ready(k, ns, wait, record_property, what="migrated_app")
    migration = app["status"]["migration"]
    assert (migration["image"], migration["result"]) == (image, "Succeeded"), migration
    dep = k.get("deployment", "shop", ns)
    assert dep is not None
    ended = datetime.fromisoformat(migration["finishedAt"].replace("Z", "+00:00"))
    began = datetime.fromisoformat(dep["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert began >= ended.replace(microsecond=0), (began, ended)
    serving = app_pods(k, ns)
    assert len(serving) == 2, serving

    failing = {"command": ["python3", "-c", "raise SystemExit(3)"], "backoffLimit": 0}
    k.apply(sample(ns, image, migrate=failing))
    app, took = timed(
        wait, lambda: reason_is(k, ns, "MigrationFailed"), REASON_BOUND, "MigrationFailed"
    )
    record_property("migration_failed_seconds", took)
    stalled = condition(app, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "MigrationFailed", stalled
    assert "exit code 3" in stalled["message"], stalled["message"]
    assert app["status"]["migration"]["result"] == "Failed"
    still = {uid: p for uid, p in app_pods(k, ns).items() if pod_ready(p)}
    assert set(still) == set(serving), (still, serving)
