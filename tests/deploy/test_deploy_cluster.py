"""deploy/ on a real API server: it installs cleanly, and its RBAC is enough and no more.

* `kubectl apply --server-side -k deploy/` succeeds with no warning at all (Pod Security is
  enforced/warned at `restricted` in the operator's namespace, so an unhardened pod would say so);
* the operator runs as a process with a token minted (TokenRequest API) for its own
  ServiceAccount, with the arguments its Deployment passes, and brings a PythonApp to Ready
  (children created, status patched, events posted): the RBAC is sufficient;
* `kubectl auth can-i --list` for that token shows nothing beyond the ClusterRole's rules and
  what every authenticated user has (self-reviews, discovery URLs): Secrets read only, pods
  listed and watched only, no wildcard, no pods/exec;
* without the secrets rule (the documented opt-out) the operator still brings an app to Ready,
  with the Secret check off, said once;
* the same for the namespaced overlay (its Roles, `--namespace` arguments), installed under
  test-unique names so it never clobbers the base installation: it reconciles within seconds
  of starting with no cluster-wide grant at all, and outside its namespaces its token can do
  nothing beyond what every authenticated user can;
* leader election works with that token: the Lease in the operator's namespace (the Role
  there) is taken and the operator leads;
* the operator exits 0 within 10 s of SIGTERM.
"""

from __future__ import annotations

import base64
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.conftest import wait_for
from tests.deploy.tools import BASE, NAMESPACED, kustomize, kustomize_text, remove_policy, run
from tests.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster

NS = "pythonapp-system"
NAME = "pythonapp-operator"
GROUP, VERSION, PLURAL = "pythonapp.dev", "v1alpha1", "pythonapps"
IMAGE = "ghcr.io/acme/hello:1.0.0@sha256:" + "3b1f4b6d2a7c9e0f" * 4
# What every authenticated user may do (system:basic-user, system:discovery,
# system:public-info-viewer): not granted by deploy/, always present in can-i --list.
EVERYONE = {
    "selfsubjectreviews.authentication.k8s.io": {"create"},
    "selfsubjectaccessreviews.authorization.k8s.io": {"create"},
    "selfsubjectrulesreviews.authorization.k8s.io": {"create"},
}


def kubectl_run(
    kubectl: Path, kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run([kubectl, "--kubeconfig", kubeconfig, *args], input=stdin, timeout=180)


def apply_ok(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert proc.returncode == 0, f"{what} failed:\n{proc.stderr}"
    assert "Warning:" not in proc.stderr, f"{what} warned:\n{proc.stderr}"


# --- the base installation -------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(kubectl: Path, kubeconfig_path: Path) -> Iterator[subprocess.CompletedProcess[str]]:
    """`kubectl apply --server-side -k deploy/`, as a cluster admin would run it; its admission
    policy is removed after the module (the session's cluster is shared)."""
    proc = kubectl_run(kubectl, kubeconfig_path, "apply", "--server-side", "-k", str(BASE))
    if proc.returncode == 0:
        kubectl_run(
            kubectl,
            kubeconfig_path,
            "wait",
            "--for=condition=Established",
            "crd/pythonapps.pythonapp.dev",
            "--timeout=60s",
        )
    yield proc
    remove_policy(kubectl, kubeconfig_path)


def test_apply_succeeds_without_warnings(installed: subprocess.CompletedProcess[str]) -> None:
    apply_ok(installed, "kubectl apply --server-side -k deploy/")
    applied = re.findall(r"^(\S+) serverside-applied$", installed.stdout, re.MULTILINE)
    assert len(applied) == len(kustomize(BASE)), installed.stdout


def test_operator_pod_is_admitted_under_restricted(
    installed: subprocess.CompletedProcess[str], core_v1: client.CoreV1Api
) -> None:
    """The ReplicaSet's pod exists: PodSecurity (enforce=restricted) admitted it."""
    apply_ok(installed, "apply")

    def pods() -> list[Any]:
        found = core_v1.list_namespaced_pod(NS, label_selector=f"app.kubernetes.io/name={NAME}")
        return list(found.items)

    admitted = wait_for(pods, 60, "the operator pod to be admitted")
    assert admitted[0].spec.automount_service_account_token is False


# --- tokens and the operator process ---------------------------------------------------------


def token_kubeconfig(
    admin: Path, core_v1: client.CoreV1Api, namespace: str, account: str, out: Path
) -> Path:
    """A kubeconfig that authenticates only with a fresh token for ``namespace/account``."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token = core_v1.create_namespaced_service_account_token(account, namespace, request)
    config = yaml.safe_load(admin.read_text())
    context_name = config["current-context"]
    context = next(c for c in config["contexts"] if c["name"] == context_name)["context"]
    cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])
    cluster_def = dict(cluster["cluster"])
    ca = cluster_def.get("certificate-authority")
    if ca:  # embed, so the file stands alone
        del cluster_def["certificate-authority"]
        data = base64.b64encode(Path(ca).read_bytes()).decode()
        cluster_def["certificate-authority-data"] = data
    out.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster_def}],
                "users": [{"name": account, "user": {"token": token.status.token}}],
                "contexts": [{"name": "op", "context": {"cluster": "c", "user": account}}],
                "current-context": "op",
            }
        )
    )
    out.chmod(0o600)
    return out


def sample_app(namespace: str, name: str = "hello") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PythonApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": IMAGE, "replicas": 1, "resources": {"limits": {"memory": "128Mi"}}},
    }


def ready(custom_objects: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    app = custom_objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    status = app.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    return (
        conditions.get("Ready", {}).get("status") == "True"
        and status.get("observedGeneration") == app["metadata"]["generation"]
    )


def forbidden_lines(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        # RBAC denials only (a namespace being deleted also answers 403, for another reason)
        if re.search(r"cannot [a-z]+ resource|Not enough permissions", line)
    ]


def can_i_list(kubectl: Path, kubeconfig: Path, namespace: str) -> dict[str, set[str]]:
    """`kubectl auth can-i --list`: resource -> verbs (resource rules only)."""
    proc = kubectl_run(kubectl, kubeconfig, "auth", "can-i", "--list", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and lines[0].split()[0] == "Resources", proc.stdout
    out: dict[str, set[str]] = {}
    for line in lines[1:]:
        if line.startswith(" "):  # a non-resource URL row (no resource column)
            urls, verbs = re.findall(r"\[([^\]]*)\]", line)[0], re.findall(r"\[([^\]]*)\]", line)
            assert verbs[-1] == "get", f"non-resource URL with more than get: {line}"
            assert urls
            continue
        resource = line.split()[0]
        names, verbs = re.findall(r"\[([^\]]*)\]", line)[1:3]
        assert not names, f"unexpected resourceNames rule: {line}"
        out.setdefault(resource, set()).update(verbs.split())
    return out


def granted(rules: list[dict[str, Any]]) -> dict[str, set[str]]:
    """RBAC rules in can-i's spelling: `resource.group` -> verbs."""
    out: dict[str, set[str]] = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                base, _, sub = resource.partition("/")
                key = f"{base}.{group}" if group else base
                key = f"{key}/{sub}" if sub else key
                out.setdefault(key, set()).update(rule["verbs"])
    return out


def assert_nothing_beyond(allowed: dict[str, set[str]], actual: dict[str, set[str]]) -> None:
    for resource, verbs in actual.items():
        assert "*" not in resource and "*" not in verbs, f"wildcard: {resource} {verbs}"
        if resource.startswith(
            ("secrets", "configmaps")
        ):  # read: checked and hashed, never written
            assert resource in ("secrets", "configmaps"), f"access: {resource} {verbs}"
            assert verbs <= {"get", "list", "watch"}, f"access: {resource} {verbs}"
        if resource.startswith("pods"):  # read only: what the pods say
            assert resource == "pods" and verbs <= {"list", "watch"}, f"pods: {resource} {verbs}"
        extra = verbs - allowed.get(resource, set()) - EVERYONE.get(resource, set())
        assert not extra, f"{resource}: {sorted(extra)} beyond deploy/'s rules"


@dataclass(frozen=True)
class Api:
    """The cluster under test, as an admin sees it."""

    kubeconfig: Path
    kubectl: Path
    core: client.CoreV1Api
    custom: client.CustomObjectsApi


@pytest.fixture
def api(
    kubeconfig_path: Path,
    kubectl: Path,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
) -> Api:
    return Api(kubeconfig_path, kubectl, core_v1, custom_objects)


def test_operator_with_its_own_token_reconciles_to_ready(
    installed: subprocess.CompletedProcess[str], api: Api, namespace: str, tmp_path: Path
) -> None:
    kubeconfig_path, kubectl, core_v1, custom_objects = (
        api.kubeconfig,
        api.kubectl,
        api.core,
        api.custom,
    )
    app_namespace = namespace
    apply_ok(installed, "apply")
    kubeconfig = token_kubeconfig(kubeconfig_path, core_v1, NS, NAME, tmp_path / "kubeconfig")
    who = kubectl_run(
        kubectl, kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"
    )
    assert who.stdout == f"system:serviceaccount:{NS}:{NAME}", who.stderr

    custom_objects.create_namespaced_custom_object(
        GROUP, VERSION, app_namespace, PLURAL, sample_app(app_namespace)
    )
    # The arguments the Deployment passes (the base watches all namespaces).
    deployment = next(o for o in kustomize(BASE) if o["kind"] == "Deployment")
    args = [a for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"]]
    args = args[: args.index("--health")]
    # POD_NAMESPACE as the downward API sets it in the pod: the Lease lives there, under the
    # Role the base grants in that namespace only
    op = OperatorProcess(kubeconfig, tmp_path / "operator.log", args, env={"POD_NAMESPACE": NS})
    try:
        op.wait_healthy()
        wait_for(lambda: ready(custom_objects, app_namespace, "hello"), 60, "PythonApp Ready")
        assert any(line.get("message") == "became leader" for line in op.lines()), op.tail()
        # Drift/recreation path (delete) and the Recreated event (events create).
        client.AppsV1Api(core_v1.api_client).delete_namespaced_deployment("hello", app_namespace)

        def recreated() -> bool:
            events = core_v1.list_namespaced_event(
                app_namespace, field_selector="involvedObject.kind=PythonApp"
            )
            return any(e.reason == "Recreated" for e in events.items)

        wait_for(recreated, 60, "the Recreated event after deleting the Deployment")
        wait_for(lambda: ready(custom_objects, app_namespace, "hello"), 60, "Ready again")
        # autoscaling on and off: the HPA created and deleted, replicas handed over (patch)
        autoscaling = client.AutoscalingV2Api(core_v1.api_client)

        def switch(autoscale: dict[str, int] | None) -> None:
            custom_objects.patch_namespaced_custom_object(
                GROUP, VERSION, app_namespace, PLURAL, "hello", {"spec": {"autoscaling": autoscale}}
            )

        def hpa_exists() -> bool:
            found = autoscaling.list_namespaced_horizontal_pod_autoscaler(app_namespace).items
            return any(h.metadata.name == "hello" for h in found)

        switch({"minReplicas": 1, "maxReplicas": 3})
        wait_for(hpa_exists, 60, "the HorizontalPodAutoscaler")
        wait_for(lambda: ready(custom_objects, app_namespace, "hello"), 60, "Ready autoscaled")
        switch(None)
        wait_for(lambda: not hpa_exists(), 60, "the HorizontalPodAutoscaler deleted")
        wait_for(lambda: ready(custom_objects, app_namespace, "hello"), 60, "Ready unscaled")
        assert not forbidden_lines(op.text()), op.tail()
        rights = can_i_list(kubectl, kubeconfig, app_namespace)
    finally:
        code = op.stop()
    assert code == 0, f"operator exit {code} on SIGTERM (None: still running after 10 s)"
    cluster_role = next(o for o in kustomize(BASE) if o["kind"] == "ClusterRole")
    assert_nothing_beyond(granted(cluster_role["rules"]), rights)
    assert "pythonapps.pythonapp.dev/status" in rights and "deployments.apps" in rights


def test_secrets_are_read_only_and_pods_untouchable(
    installed: subprocess.CompletedProcess[str],
    kubeconfig_path: Path,
    kubectl: Path,
    core_v1: client.CoreV1Api,
    tmp_path: Path,
) -> None:
    apply_ok(installed, "apply")
    kubeconfig = token_kubeconfig(kubeconfig_path, core_v1, NS, NAME, tmp_path / "kubeconfig")
    for namespace in (NS, "kube-system", "default"):
        for verb, resource in (
            ("create", "secrets"),
            ("update", "secrets"),
            ("patch", "secrets"),
            ("delete", "secrets"),
            ("get", "pods"),
            ("get", "pods/log"),
            ("create", "pods/exec"),
            ("create", "pods"),
            ("escalate", "clusterroles"),
        ):
            proc = kubectl_run(
                kubectl, kubeconfig, "auth", "can-i", verb, resource, "-n", namespace
            )
            assert proc.stdout.strip() == "no", f"can {verb} {resource} in {namespace}"


def test_an_install_without_secret_or_configmap_rights_works_with_the_checks_off(
    installed: subprocess.CompletedProcess[str], api: Api, namespace: str, tmp_path: Path
) -> None:
    """The documented opt-outs: the base ClusterRole less its secrets and configmaps rules. An
    app naming a Secret, an image pull Secret and a ConfigMap that do not exist goes Ready (no
    check), the log says once per kind why, never per app."""
    apply_ok(installed, "apply")
    account = f"no-secrets-{secrets.token_hex(3)}"
    base_role = next(o for o in kustomize(BASE) if o["kind"] == "ClusterRole")
    rules = [r for r in base_role["rules"] if not {"secrets", "configmaps"} & set(r["resources"])]
    assert len(rules) == len(base_role["rules"]) - 2
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": NS},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": account},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": account},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": account,
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": NS}],
        },
    ]
    text = yaml.safe_dump_all(objects)
    apply_ok(kubectl_run(api.kubectl, api.kubeconfig, "apply", "-f", "-", stdin=text), "apply")
    try:
        kubeconfig = token_kubeconfig(api.kubeconfig, api.core, NS, account, tmp_path / "kc")
        app = sample_app(namespace, "with-secret")
        app["spec"]["secrets"] = [{"name": "nowhere", "env": [{"name": "X", "key": "x"}]}]
        app["spec"]["imagePullSecrets"] = [{"name": "no-registry"}]
        app["spec"]["config"] = [{"name": "no-config", "env": [{"name": "Y", "key": "y"}]}]
        api.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, app)
        args = ["--all-namespaces", "--no-leader-elect"]  # one replica: no Lease to hold
        op = OperatorProcess(kubeconfig, tmp_path / "operator.log", args)
        try:
            op.wait_healthy()
            wait_for(lambda: ready(api.custom, namespace, "with-secret"), 60, "Ready, unchecked")
            for kind in ("Secrets", "ConfigMaps"):
                said = [
                    line
                    for line in op.lines()
                    if f"may not list {kind}" in str(line.get("message"))
                ]
                assert len(said) == 1, (kind, op.tail())
            assert op.metrics()["pythonapp_secrets_readable"] == 0.0, op.tail()
            assert op.metrics()["pythonapp_configmaps_readable"] == 0.0, op.tail()
        finally:
            code = op.stop()
        assert code == 0
    finally:
        kubectl_run(api.kubectl, api.kubeconfig, "delete", "-f", "-", "--wait=false", stdin=text)


# --- the namespaced overlay ------------------------------------------------------------------


@pytest.fixture
def namespaced_install(
    installed: subprocess.CompletedProcess[str],
    kubeconfig_path: Path,
    kubectl: Path,
    core_v1: client.CoreV1Api,
) -> Iterator[tuple[str, list[str]]]:
    """The namespaced overlay under unique names: (operator ns, watched nss). It has nothing
    cluster-scoped besides the CRD (shared with the base, already installed) and Namespace."""
    apply_ok(installed, "apply")
    suffix = secrets.token_hex(3)
    ops, watched = f"t-deploy-ops-{suffix}", [f"t-deploy-a-{suffix}", f"t-deploy-b-{suffix}"]
    text = kustomize_text(NAMESPACED)
    text = text.replace("team-a", watched[0]).replace("team-b", watched[1])
    text = text.replace(NS, ops)
    # The CRD and the admission policy are shared with the base installation (the same objects,
    # applied already by `installed`): the overlay's own cluster-scoped object is its Namespace.
    shared = {
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    docs = [d for d in yaml.safe_load_all(text) if d["kind"] not in shared]
    cluster_scoped = {d["kind"] for d in docs if "namespace" not in d["metadata"]}
    assert cluster_scoped == {"Namespace"}, f"cluster-scoped objects besides {shared}: {docs}"
    for ns in watched:
        core_v1.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(name=ns, labels={"pythonapp.dev/test": "true"})
            )
        )
    proc = kubectl_run(
        kubectl,
        kubeconfig_path,
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(docs),
    )
    try:
        apply_ok(proc, "kubectl apply of the namespaced overlay")
        yield ops, watched
    finally:
        for ns in (ops, *watched):
            try:
                core_v1.delete_namespace(ns)
            except ApiException as e:
                if e.status != 404:
                    raise


# Namespaced mode reconciles as soon as it starts: kopf's cluster scanning is off, so there are
# no forbidden Namespace/CRD lists to retry (they took about a minute before the first reconcile).
# What proves it is the log (no denial, no retried request refused with 403), not a stopwatch:
# this deadline only bounds the wait on a loaded machine.
NAMESPACED_READY_SECONDS = 90


def test_namespaced_overlay_is_enough_in_its_namespaces_only(
    namespaced_install: tuple[str, list[str]], api: Api, tmp_path: Path
) -> None:
    kubeconfig_path, kubectl, core_v1, custom_objects = (
        api.kubeconfig,
        api.kubectl,
        api.core,
        api.custom,
    )
    ops, watched = namespaced_install
    kubeconfig = token_kubeconfig(kubeconfig_path, core_v1, ops, NAME, tmp_path / "kubeconfig")
    for ns in watched:
        custom_objects.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, sample_app(ns))
    # The arguments the overlay's Deployment passes, with the test's namespaces.
    deployment = next(o for o in kustomize(NAMESPACED) if o["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    args = args[: args.index("--health")]
    args = [{"team-a": watched[0], "team-b": watched[1]}.get(a, a) for a in args]
    assert args == [a for ns in watched for a in ("--namespace", ns)], args
    op = OperatorProcess(kubeconfig, tmp_path / "operator.log", args, env={"POD_NAMESPACE": ops})
    try:
        op.wait_healthy()
        wait_for(
            lambda: all(ready(custom_objects, ns, "hello") for ns in watched),
            NAMESPACED_READY_SECONDS,
            f"Ready in {watched} within {NAMESPACED_READY_SECONDS} s of the operator's health",
        )
        log = op.text()  # the whole log: a denial early on must not scroll out of sight
        # the one denial this mode expects: the platform policy is cluster-scoped, a Role cannot
        # grant it, and the operator works without it, saying so once (deploy/README.md)
        policy_lines = [line for line in forbidden_lines(log) if "pythonapppolicies" in line]
        assert len(policy_lines) == 1, op.tail()
        assert "the platform policy is not applied" in policy_lines[0], policy_lines
        assert not [line for line in forbidden_lines(log) if line not in policy_lines], op.tail()
        refused_retries = [
            line
            for line in log.splitlines()
            if "Request attempt" in line and ("Forbidden" in line or "403" in line)
        ]
        assert not refused_retries and "Not enough permissions" not in log, op.tail()
        inside = can_i_list(kubectl, kubeconfig, watched[0])
        outside = can_i_list(kubectl, kubeconfig, "default")
    finally:
        code = op.stop()
    assert code == 0, f"operator exit {code} on SIGTERM (None: still running after 10 s)"
    objs = kustomize(NAMESPACED)
    role = next(o for o in objs if o["kind"] == "Role" and o["metadata"]["name"] == NAME)
    assert_nothing_beyond(granted(role["rules"]), inside)
    assert "deployments.apps" in inside and "pythonapps.pythonapp.dev/status" in inside
    # Outside its namespaces, nothing beyond what every authenticated user may do.
    assert_nothing_beyond({}, outside)
    assert set(outside) <= set(EVERYONE), outside
    assert "selfsubjectaccessreviews.authorization.k8s.io" in outside, outside  # parsed at all
