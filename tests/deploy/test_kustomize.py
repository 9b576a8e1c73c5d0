"""deploy/: what `kubectl kustomize` builds, checked object by object (no cluster needed).

The CRD copy inside deploy/ stays generated; the ClusterRole holds exactly the rules the
operator needs (each one commented with why in deploy/base/rbac.yaml), no wildcard, no Secret,
no pods/exec; the namespaced overlay's Roles are the same rules and it has no cluster-wide RBAC
at all; the operator Deployment is
hardened like the apps it renders and agrees with the image's ENTRYPOINT/CMD; every installation
carries the same Secret-reference admission policy, cluster-scoped; the kind overlay differs
from the base only by its local image.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from tests.deploy.tools import (
    ALL_KUSTOMIZATIONS,
    BASE,
    DEPLOY,
    DOCKERFILE,
    KIND,
    NAMESPACED,
    REPO,
    find,
    kinds,
    kustomize,
)

from pythonapp_operator.api.models import MAX_IMAGE_PULL_SECRETS, MAX_SECRETS
from pythonapp_operator.controller.leader import LEASE_NAME

NS = "pythonapp-system"
NAME = "pythonapp-operator"
ELECTION = "pythonapp-operator-leader-election"
POLICY = "pythonapp-secret-references"
DIGEST_IMAGE = re.compile(r"^[a-z0-9.\-/:]+:[\w.\-]+@sha256:[0-9a-f]{64}$")
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"

Rule = tuple[str, str, frozenset[str]]  # (apiGroup, resource, verbs)

CHILD_VERBS = frozenset({"get", "list", "watch", "create", "patch", "delete"})
# What the operator needs, as measured on a real API server (tests/deploy/test_deploy_cluster).
EXPECTED_CLUSTER_RULES: set[Rule] = {
    ("pythonapp.dev", "pythonapps", frozenset({"get", "list", "watch"})),
    ("pythonapp.dev", "pythonapps/status", frozenset({"patch"})),
    # the platform policy: one cluster-scoped object, read only (a Role cannot grant it)
    ("pythonapp.dev", "pythonapppolicies", frozenset({"get", "list", "watch"})),
    ("apps", "deployments", CHILD_VERBS),
    ("", "services", CHILD_VERBS),
    ("", "serviceaccounts", CHILD_VERBS),
    ("policy", "poddisruptionbudgets", CHILD_VERBS),
    ("networking.k8s.io", "networkpolicies", CHILD_VERBS),
    ("networking.k8s.io", "ingresses", CHILD_VERBS),
    ("gateway.networking.k8s.io", "httproutes", CHILD_VERBS),
    ("autoscaling", "horizontalpodautoscalers", CHILD_VERBS),
    ("batch", "jobs", CHILD_VERBS),
    ("batch", "cronjobs", CHILD_VERBS),
    ("apps", "replicasets", frozenset({"list", "watch"})),
    ("", "pods", frozenset({"list", "watch"})),
    ("", "secrets", frozenset({"get", "list", "watch"})),
    ("", "configmaps", frozenset({"get", "list", "watch"})),
    ("", "events", frozenset({"create"})),
    ("apiextensions.k8s.io", "customresourcedefinitions", frozenset({"list", "watch"})),
}
FORBIDDEN_RESOURCES = {
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "nodes/proxy",
    "serviceaccounts/token",
    "clusterroles",
    "roles",
    "clusterrolebindings",
    "rolebindings",
}
FORBIDDEN_VERBS = {"*", "bind", "escalate", "impersonate", "approve", "deletecollection"}


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict[str, Any]]]:
    return {name: kustomize(path) for name, path in ALL_KUSTOMIZATIONS.items()}


def flatten(rules: list[dict[str, Any]]) -> set[Rule]:
    out = set()
    for rule in rules:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.add((group, resource, frozenset(rule["verbs"])))
    return out


def assert_safe_rules(rules: list[dict[str, Any]], where: str) -> None:
    for rule in rules:
        text = json.dumps(rule)
        assert "*" not in text, f"{where}: wildcard in {rule}"
        assert not FORBIDDEN_RESOURCES & set(rule["resources"]), f"{where}: {rule}"
        assert not FORBIDDEN_VERBS & set(rule["verbs"]), f"{where}: {rule}"
        if "pods" in rule["resources"]:  # what the pods say, read only
            assert set(rule["verbs"]) <= {"list", "watch"}, f"{where}: {rule}"
        if {"secrets", "configmaps"} & set(rule["resources"]):  # checked and hashed, never written
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, f"{where}: {rule}"


# --- generated CRD ---------------------------------------------------------------------------


def test_crd_copies_are_generated_never_edited() -> None:
    """deploy/base/crds/pythonapps.yaml == crds/pythonapps.yaml == `pythonapp crd`, byte for byte
    (regenerate both with `make crd`)."""
    cli = Path(sys.executable).with_name("pythonapp")
    generated = subprocess.run(
        [str(cli), "crd"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    for copy_path in (REPO / "crds" / "pythonapps.yaml", DEPLOY / "base/crds/pythonapps.yaml"):
        assert copy_path.read_text() == generated, (
            f"{copy_path.relative_to(REPO)} differs from `pythonapp crd`: run `make crd` "
            "(pythonapp crd > crds/pythonapps.yaml && cp crds/pythonapps.yaml deploy/base/crds/)"
        )
    policy = subprocess.run(
        [str(cli), "crd", "--policy"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    for copy_path in (
        REPO / "crds" / "pythonapppolicies.yaml",
        DEPLOY / "base/crds/pythonapppolicies.yaml",
    ):
        assert copy_path.read_text() == policy, (
            f"{copy_path.relative_to(REPO)} differs from `pythonapp crd --policy`: run `make crd`"
        )


def test_every_kustomization_builds_with_the_crd(built: dict[str, list[dict[str, Any]]]) -> None:
    for name, objs in built.items():
        crd = find(objs, "CustomResourceDefinition", "pythonapps.pythonapp.dev")
        assert crd["spec"]["scope"] == "Namespaced", name
        policy = find(objs, "CustomResourceDefinition", "pythonapppolicies.pythonapp.dev")
        assert policy["spec"]["scope"] == "Cluster", name


# --- namespace, service account --------------------------------------------------------------


def test_namespace_enforces_restricted_pod_security(built: dict[str, Any]) -> None:
    ns = find(built["deploy"], "Namespace")
    assert ns["metadata"]["name"] == NS
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode


def test_every_namespaced_object_lands_in_the_operator_namespace(built: dict[str, Any]) -> None:
    for obj in built["deploy"]:
        if obj["kind"] in {
            "Namespace",
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        }:
            assert "namespace" not in obj["metadata"], obj["kind"]
        else:
            assert obj["metadata"]["namespace"] == NS, obj["kind"]


def test_service_account_mounts_no_token(built: dict[str, Any]) -> None:
    sa = find(built["deploy"], "ServiceAccount", NAME)
    assert sa["automountServiceAccountToken"] is False


# --- RBAC ------------------------------------------------------------------------------------


def test_cluster_role_is_exactly_what_the_operator_needs(built: dict[str, Any]) -> None:
    role = find(built["deploy"], "ClusterRole", NAME)
    assert_safe_rules(role["rules"], "ClusterRole")
    assert flatten(role["rules"]) == EXPECTED_CLUSTER_RULES
    binding = find(built["deploy"], "ClusterRoleBinding", NAME)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": NAME,
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NS}]


def test_every_rule_says_why() -> None:
    """In deploy/base/rbac.yaml and the namespaced overlay, a comment precedes every rule."""
    for path in (
        DEPLOY / "base/rbac.yaml",
        NAMESPACED / "roles.yaml",
    ):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if re.match(r"^\s*- apiGroups:", line):
                above = lines[i - 1].strip()
                assert above.startswith("#"), f"{path.relative_to(REPO)}:{i + 1}: no comment"


def test_namespaced_overlay_grants_the_same_rules_per_namespace(built: dict[str, Any]) -> None:
    objs = built["namespaced"]
    deployment = find(objs, "Deployment", NAME)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    watched = {args[i + 1] for i, a in enumerate(args) if a == "--namespace"}
    assert watched and "--all-namespaces" not in args, args
    roles = {
        r["metadata"]["namespace"]: r for r in kinds(objs, "Role") if r["metadata"]["name"] == NAME
    }
    bindings = {
        b["metadata"]["namespace"]: b
        for b in kinds(objs, "RoleBinding")
        if b["metadata"]["name"] == NAME
    }
    assert set(roles) == watched == set(bindings), (watched, set(roles), set(bindings))
    # cluster-scoped kinds cannot be granted by a Role: the CRDs (kopf), the platform policy
    # (the operator works without it, said once)
    namespaced_rules = {
        r
        for r in EXPECTED_CLUSTER_RULES
        if r[1] not in ("customresourcedefinitions", "pythonapppolicies")
    }
    for ns, role in roles.items():
        assert_safe_rules(role["rules"], f"Role in {ns}")
        assert flatten(role["rules"]) == namespaced_rules, ns
        assert bindings[ns]["roleRef"]["kind"] == "Role"
        assert bindings[ns]["subjects"] == [
            {"kind": "ServiceAccount", "name": NAME, "namespace": NS}
        ]
    # Nothing cluster-wide: with --namespace the operator switches kopf's scanning off
    # (handlers.tune), so it needs no Namespace or CRD list/watch.
    assert not kinds(objs, "ClusterRole") and not kinds(objs, "ClusterRoleBinding")


def test_namespaced_overlay_is_the_base_less_cluster_rbac_plus_roles(
    built: dict[str, Any],
) -> None:
    """The overlay drops exactly the base's ClusterRole and ClusterRoleBinding (and adds the
    per-namespace Roles and RoleBindings): the CRD, Namespace and operator objects stay."""

    def ids(objs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {
            (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objs
        }

    base, namespaced = ids(built["deploy"]), ids(built["namespaced"])
    cluster_rbac = {("ClusterRole", "", NAME), ("ClusterRoleBinding", "", NAME)}
    assert cluster_rbac <= base
    assert base - namespaced == cluster_rbac
    assert {kind for kind, _, _ in namespaced - base} == {"Role", "RoleBinding"}


# --- the Secret-reference admission policy --------------------------------------------------


def test_every_kustomization_installs_the_secret_reference_policy(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    """deploy/admission, the same in every installation, cluster-scoped (no namespace written
    in by the base's namespace transformer), bound to refuse, matching every PythonApp version
    on CREATE and UPDATE, and asking the authorizer about `get` on Secrets. Its behaviour is
    tested on a real API server by test_admission_policy.py."""
    policies = {
        name: find(objs, "ValidatingAdmissionPolicy", POLICY) for name, objs in built.items()
    }
    bindings = {
        name: find(objs, "ValidatingAdmissionPolicyBinding", POLICY) for name, objs in built.items()
    }
    assert policies["deploy"] == policies["namespaced"] == policies["kind"]
    assert bindings["deploy"] == bindings["namespaced"] == bindings["kind"]
    policy, binding = policies["deploy"], bindings["deploy"]
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert "namespace" not in policy["metadata"] and "namespace" not in binding["metadata"]
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": ["pythonapp.dev"],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["pythonapps"],
        }
    ]
    # one validation per Secret an app may name, each with one authorization check (a check
    # costs a third of what one expression may spend: api/admission.py)
    validations = spec["validations"]
    # and spec.expose.tls.secretName
    assert len(validations) == MAX_SECRETS + MAX_IMAGE_PULL_SECRETS + 1
    for index, validation in enumerate(validations):
        assert validation["reason"] == "Forbidden" and validation["message"].startswith(POLICY)
        assert validation["expression"].count("authorizer") == 1
        assert f"size(variables.checked) <= {index} ||" in validation["expression"]
        assert "resource('secrets')" in validation["expression"]
        assert "check('get')" in validation["expression"]
        # authorizer is not available to messageExpression
        assert "authorizer" not in validation["messageExpression"]
        assert f"variables.checked[{index}]" in validation["messageExpression"]
    assert not any("authorizer" in v["expression"] for v in spec["variables"])
    assert binding["spec"] == {"policyName": POLICY, "validationActions": ["Deny"]}


# --- the operator Deployment -----------------------------------------------------------------


def operator_pod(objs: list[dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = find(objs, "Deployment", NAME)["spec"]["template"]["spec"]
    return pod


def test_operator_deployment_is_hardened(built: dict[str, Any]) -> None:
    deployment = find(built["deploy"], "Deployment", NAME)
    spec = deployment["spec"]
    # two replicas, one leading (leader election); a rollout never drops below two
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == NAME
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] >= 10
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001
    assert psc["runAsGroup"] == 10001 and psc["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001 and sc.get("privileged") is False
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory", "ephemeral-storage"}
    assert DIGEST_IMAGE.match(container["image"]), container["image"]
    assert container["imagePullPolicy"] == "Always"
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"]["sizeLimit"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_probes_use_the_operator_health_endpoints(built: dict[str, Any]) -> None:
    (container,) = operator_pod(built["deploy"])["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    probes = {k: container[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    for kind, probe in probes.items():
        assert probe["httpGet"]["port"] == "health", kind
    assert probes["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"  # 503 without the CRD
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"  # 200 once listed
    args = container["args"]
    assert args[args.index("--metrics") + 1] == "0.0.0.0:9090"


def test_service_account_token_is_projected_explicitly(built: dict[str, Any]) -> None:
    pod = operator_pod(built["deploy"])
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == SA_PATH)
    assert mount.get("readOnly") is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    sources = volume["projected"]["sources"]
    token = next(s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s)
    assert token["path"] == "token" and token["expirationSeconds"] <= 3607
    ca = next(s["configMap"] for s in sources if "configMap" in s)
    assert ca["name"] == "kube-root-ca.crt" and ca["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    downward = next(s["downwardAPI"] for s in sources if "downwardAPI" in s)
    assert downward["items"][0]["path"] == "namespace"
    assert downward["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    # No Secret volume of any kind (the operator never reads Secrets).
    assert not [v for v in pod["volumes"] if "secret" in v]


def test_deployment_agrees_with_the_image(built: dict[str, Any]) -> None:
    """command/args are the Dockerfile's ENTRYPOINT/CMD; the health port is the HEALTHCHECK's."""
    parser = DockerfileParser(path=str(DOCKERFILE))
    (container,) = operator_pod(built["deploy"])["containers"]
    entrypoint = [i["value"] for i in parser.structure if i["instruction"] == "ENTRYPOINT"][-1]
    assert container["command"] == json.loads(entrypoint)
    cmd = [i["value"] for i in parser.structure if i["instruction"] == "CMD"][-1]
    assert container["args"] == json.loads(cmd)


def test_leader_election_may_touch_only_its_own_lease_in_its_own_namespace(
    built: dict[str, Any],
) -> None:
    """A Role in the operator's namespace (in both installations): get/update on the one Lease
    by name; create unnamed (RBAC cannot restrict create by name). No ClusterRole rule."""
    for name in ("deploy", "namespaced"):
        objs = built[name]
        role = find(objs, "Role", ELECTION)
        assert role["metadata"]["namespace"] == NS, name
        assert_safe_rules(role["rules"], f"{name}: leader election Role")
        assert sorted((r["verbs"], r.get("resourceNames")) for r in role["rules"]) == [
            (["create"], None),
            (["get", "update"], [LEASE_NAME]),
        ], role["rules"]
        for rule in role["rules"]:
            assert rule["apiGroups"] == ["coordination.k8s.io"] and rule["resources"] == ["leases"]
        binding = find(objs, "RoleBinding", ELECTION)
        assert binding["metadata"]["namespace"] == NS
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": ELECTION,
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NS}]
        # the Lease the operator uses by default is the one the Role names
        (container,) = operator_pod(objs)["containers"]
        assert "--leader-election-id" not in container["args"]
        assert "--no-leader-elect" not in container["args"]
    for rule in find(built["deploy"], "ClusterRole", NAME)["rules"]:
        assert "leases" not in rule["resources"]


def test_replicas_learn_their_pod_name_and_namespace_and_spread_by_node(
    built: dict[str, Any],
) -> None:
    pod = operator_pod(built["deploy"])
    (container,) = pod["containers"]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}) for e in container["env"]}
    assert env["POD_NAME"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["fieldPath"] == "metadata.namespace"
    # preferred, never required: a one-node cluster still runs both replicas
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "ScheduleAnyway"
    anti = pod["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti
    (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    labels = pod_labels(built["deploy"])
    selectors = [c["labelSelector"]["matchLabels"] for c in spread.values()]
    for match in [term["podAffinityTerm"]["labelSelector"]["matchLabels"], *selectors]:
        assert match.items() <= labels.items()


def pod_labels(objs: list[dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = find(objs, "Deployment", NAME)["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


def test_pdb_never_blocks_a_drain(built: dict[str, Any]) -> None:
    pdb = find(built["deploy"], "PodDisruptionBudget", NAME)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_kind_overlay_only_swaps_the_image(built: dict[str, Any]) -> None:
    base, kind = built["deploy"], built["kind"]
    (container,) = operator_pod(kind)["containers"]
    assert "@sha256:" not in container["image"] and container["image"].endswith(":dev")
    assert container["imagePullPolicy"] == "Never"
    normalized = copy.deepcopy(kind)
    (c,) = operator_pod(normalized)["containers"]
    (b,) = operator_pod(base)["containers"]
    c["image"], c["imagePullPolicy"] = b["image"], b["imagePullPolicy"]
    assert normalized == base


def test_kustomizations_exist_where_documented() -> None:
    for path in (BASE, DEPLOY / "base", DEPLOY / "admission", KIND, NAMESPACED):
        assert (path / "kustomization.yaml").is_file(), path


def test_every_kustomization_installs_the_platform_policy_bound_to_its_params(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    """deploy/admission/platformpolicy.yaml in every installation: the PythonAppPolicy is its
    params, the binding names the one object `cluster` and admits everything without it.
    Behaviour: tests/deploy/test_platform_admission.py on a real API server."""
    for name, objs in built.items():
        policy = find(objs, "ValidatingAdmissionPolicy", "pythonapp-platform-policy")
        binding = find(objs, "ValidatingAdmissionPolicyBinding", "pythonapp-platform-policy")
        assert "namespace" not in policy["metadata"], name
        assert policy["spec"]["paramKind"] == {
            "apiVersion": "pythonapp.dev/v1alpha1",
            "kind": "PythonAppPolicy",
        }
        assert binding["spec"]["paramRef"] == {
            "name": "cluster",
            "parameterNotFoundAction": "Allow",
        }
