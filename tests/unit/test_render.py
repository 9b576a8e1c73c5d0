"""The pure renderer: golden outputs for examples/ and the invariants every output keeps.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit``
and review the diff like any other code change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.factories import make_doc

from pythonapp_operator.api.models import PythonApp
from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.render import config_volume_name, render, volume_name
from pythonapp_operator.yamlio import dump_all, load_all

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
GOLDEN = Path(__file__).parent / "golden"


def app_of(doc: dict[str, Any]) -> PythonApp:
    app, problems = validate_document(doc)
    assert app is not None, problems
    return app


def by_kind(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objs}


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_golden(example: Path) -> None:
    apps = [app_of(d) for d in load_all(example.read_text()) if d.get("kind") == "PythonApp"]
    assert apps, f"{example} holds no PythonApp"
    out = dump_all(obj for app in apps for obj in render(app))
    golden = GOLDEN / example.name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(out)
    assert golden.exists(), f"no golden file: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert out == golden.read_text(), f"render of {example.name} differs from {golden}"


def test_pythonapp_render_is_byte_identical_across_processes_and_matches_golden() -> None:
    """Two separate processes with different hash seeds (set and dict-of-set iteration order
    would differ) print the same bytes as the committed golden files. Rendering the examples
    with CPython 3.12 and 3.13 (same locked dependencies) gave the same bytes too."""
    stream = "\n---\n".join(example.read_text() for example in EXAMPLES)
    golden = b"".join((GOLDEN / example.name).read_bytes() for example in EXAMPLES)
    outputs = []
    for seed in ("0", "2654435761"):
        proc = subprocess.run(
            [sys.executable, "-m", "pythonapp_operator.cli", "render", "-"],
            input=stream.encode(),
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=False,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1], "pythonapp render differs between two runs"
    assert outputs[0] == golden, "pythonapp render differs from tests/unit/golden"


def test_render_is_deterministic() -> None:
    app = app_of(make_doc(secrets=[{"name": "b"}, {"name": "a"}]))
    assert dump_all(render(app)) == dump_all(render(app))


def test_web_set_and_order() -> None:
    kinds = [o["kind"] for o in render(app_of(make_doc()))]
    assert kinds == [
        "Deployment",
        "ServiceAccount",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ]


def test_worker_has_no_service_no_port_no_http_probes() -> None:
    objs = render(app_of(make_doc(profile="worker")))
    kinds = [o["kind"] for o in objs]
    assert "Service" not in kinds
    container = objs[0]["spec"]["template"]["spec"]["containers"][0]
    assert "ports" not in container
    assert not any(k in container for k in ("livenessProbe", "readinessProbe", "startupProbe"))
    assert "lifecycle" not in container
    netpol = by_kind(objs)["NetworkPolicy"]
    assert netpol["spec"]["ingress"] == []  # no rule: deny all, written so the operator owns it
    assert netpol["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_hardening_of_the_pod() -> None:
    dep = render(app_of(make_doc()))[0]
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["imagePullPolicy"] == "Always"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] >= 10000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"], "add": []}  # add: [] owns the list
    assert (pod["hostNetwork"], pod["hostPID"], pod["hostIPC"]) == (False, False, False)
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"]["sizeLimit"] == "64Mi"
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    for key in ("cpu", "memory", "ephemeral-storage"):
        assert key in c["resources"]["requests"] and key in c["resources"]["limits"]
    assert c["resources"]["requests"]["memory"] == "512Mi"  # defaults to the limit
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert pod["terminationGracePeriodSeconds"] == 30


def test_probes_web_defaults_and_distinct_readiness() -> None:
    c = render(app_of(make_doc()))[0]["spec"]["template"]["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["livenessProbe"]["periodSeconds"] == 30
    assert c["livenessProbe"]["timeoutSeconds"] == 10
    assert c["livenessProbe"]["failureThreshold"] == 3
    assert c["readinessProbe"]["httpGet"]["path"] == "/health?probe=readiness"
    assert c["readinessProbe"]["httpGet"]["path"] != c["livenessProbe"]["httpGet"]["path"]
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 40
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_secrets_are_read_only_volumes_without_subpath_and_env_refs() -> None:
    objs = render(
        app_of(
            make_doc(
                secrets=[
                    {"name": "db"},
                    {
                        "name": "api",
                        "mountPath": "/etc/api",
                        "env": [{"name": "TOKEN", "key": "t"}],
                    },
                ]
            )
        )
    )
    pod = objs[0]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/run/secrets/db"]["readOnly"] is True
    assert mounts["/etc/api"]["readOnly"] is True
    assert all("subPath" not in m for m in c["volumeMounts"])
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["secret-db"]["secret"]["secretName"] == "db"
    assert {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "t"}}} in c["env"]


def test_config_is_read_only_volumes_without_subpath_env_refs_and_hashes() -> None:
    app = app_of(
        make_doc(
            config=[
                {"name": "settings"},
                {"name": "flags", "mountPath": "/etc/flags", "env": [{"name": "F", "key": "f"}]},
                {"name": "static", "rotation": "none"},
            ]
        )
    )
    hashes = {"settings": "h1", "flags": "h2", "static": "h3"}
    dep = render(app, config_hashes=hashes, config_versions={"settings": "7"})[0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/etc/config/settings"] == {
        "name": "config-settings",
        "mountPath": "/etc/config/settings",
        "readOnly": True,
    }
    assert mounts["/etc/flags"]["readOnly"] is True
    assert all("subPath" not in m for m in c["volumeMounts"])
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["config-flags"]["configMap"] == {"name": "flags", "defaultMode": 0o440}
    assert {"name": "F", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "f"}}} in c[
        "env"
    ]
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum.pythonapp.dev/config-settings"] == "h1"
    assert annotations["checksum.pythonapp.dev/config-flags"] == "h2"
    assert "checksum.pythonapp.dev/config-static" not in annotations  # rotation: none
    assert dep["metadata"]["annotations"]["pythonapp.dev/config-versions"] == '{"settings":"7"}'
    assert "imagePullSecrets" not in pod


def test_image_pull_secrets_are_on_the_pods_in_order_and_never_hashed() -> None:
    app = app_of(make_doc(imagePullSecrets=[{"name": "reg-b"}, {"name": "reg-a"}]))
    dep = render(app, {"reg-b": "h"})[0]
    assert dep["spec"]["template"]["spec"]["imagePullSecrets"] == [
        {"name": "reg-b"},
        {"name": "reg-a"},
    ]
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert not [k for k in annotations if k.startswith("checksum.")]


def test_volume_names_are_dns_labels_even_for_long_dotted_secret_names() -> None:
    long = "a." * 100 + "b"
    name = volume_name(long)
    assert len(name) <= 63
    assert volume_name(long) == name
    assert volume_name(long + "c") != name
    assert volume_name("db.credentials") == "secret-db-credentials"
    assert config_volume_name("db.credentials") == "config-db-credentials"
    assert len(config_volume_name(long)) <= 63


def test_parent_labels_do_not_leak_and_owner_reference_is_set() -> None:
    doc = make_doc()
    doc["metadata"]["labels"] = {"argocd.argoproj.io/instance": "prod", "team": "a"}
    doc["metadata"]["uid"] = "1234"
    for obj in render(app_of(doc)):
        assert "argocd.argoproj.io/instance" not in obj["metadata"]["labels"]
        assert "team" not in obj["metadata"]["labels"]
        (ref,) = obj["metadata"]["ownerReferences"]
        assert ref["controller"] is True and ref["uid"] == "1234"


def test_selector_is_a_subset_of_template_labels() -> None:
    dep = render(app_of(make_doc()))[0]
    selector = dep["spec"]["selector"]["matchLabels"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_cpu_limit_default_never_below_request() -> None:
    c = render(app_of(make_doc(resources={"requests": {"cpu": "3"}, "limits": {"memory": "1Gi"}})))[
        0
    ]["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"]["cpu"] == "3"


def test_default_requests_never_above_a_lower_limit() -> None:
    # found by the fuzzed server dry run: a limit below a default request made a Deployment
    # the API server refuses ("must be less than or equal to ... limit")
    limits = {"cpu": "50m", "memory": "64Mi", "ephemeral-storage": "0"}
    c = render(app_of(make_doc(resources={"limits": limits})))[0]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert c["resources"] == {"requests": limits, "limits": limits}


@settings(max_examples=60, deadline=None)
@given(
    replicas=st.integers(0, 50),
    profile=st.sampled_from(["web", "worker"]),
    uid=st.integers(1, 2**31 - 1),
    grace=st.integers(6, 3600),
)
def test_every_valid_spec_renders_hardened(
    replicas: int, profile: str, uid: int, grace: int
) -> None:
    objs = render(
        app_of(
            make_doc(
                replicas=replicas,
                profile=profile,
                securityContext={"runAsUser": uid},
                terminationGracePeriodSeconds=grace,
            )
        )
    )
    dep = objs[0]
    assert dep["spec"]["replicas"] == replicas
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["containers"][0]["securityContext"]["runAsNonRoot"] is True
    for obj in objs:
        assert obj["metadata"]["namespace"] == "team-a"
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "shop"
