"""The hardening check: what another writer did to weaken a child, by field path, and whether
the operator's forced apply puts it back (``restore``) or the app must report it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from tests.unit.factories import make_doc

from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.controller.compare import needs_apply, with_hash
from pythonapp_operator.controller.hardening import Finding, check
from pythonapp_operator.render import render

Obj = dict[str, Any]
POD = "spec.template.spec"


def rendered(kind: str, **spec: Any) -> Obj:
    app, problems = validate_document(make_doc(**spec))
    assert app is not None, problems
    return next(m for m in render(app) if m["kind"] == kind)


def stored(desired: Obj) -> Obj:
    """What the API server holds after the operator's apply: omitempty fields dropped, its
    own defaults added."""

    def drop(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: drop(v)
                for k, v in value.items()
                if v not in ([], {}) and not (v is False and k.startswith("host"))
            }
        if isinstance(value, list):
            return [drop(v) for v in value]
        return value

    live: Obj = drop(copy.deepcopy(with_hash(desired)))
    live["metadata"]["uid"] = "u1"
    if desired["kind"] == "Deployment":
        pod = live["spec"]["template"]["spec"]
        pod.update(dnsPolicy="ClusterFirst", schedulerName="default-scheduler")
        for container in pod["containers"]:
            container["terminationMessagePath"] = "/dev/termination-log"
    return live


def pod(live: Obj) -> Obj:
    spec: Obj = live["spec"]["template"]["spec"]
    return spec


def sidecar(**security: Any) -> Obj:
    """An injected container that passes restricted, with ``security`` overriding its context."""
    context = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    context.update(security)
    return {"name": "proxy", "image": "proxy:1", "securityContext": context}


def paths(found: list[Finding]) -> dict[str, bool]:
    return {f.path: f.restore for f in found}


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"profile": "worker", "port": None},
        {"secrets": [{"name": "db", "env": [{"name": "DB_URL", "key": "url"}]}]},
        {"automountServiceAccountToken": True},
    ],
    ids=["web", "worker", "secrets", "token-asked"],
)
@pytest.mark.parametrize("kind", ["Deployment", "NetworkPolicy", "ServiceAccount"])
def test_what_the_operator_renders_is_clean_as_rendered_and_as_stored(
    kind: str, spec: dict[str, Any]
) -> None:
    desired = rendered(kind, **spec)
    assert check(desired, desired) == []
    assert check(desired, stored(desired)) == []


# -- the four cases of issue 17, finding 3 ----------------------------------------------------


def test_allow_all_ingress_added_to_a_workers_deny_all_policy_is_put_back() -> None:
    desired = rendered("NetworkPolicy", profile="worker", port=None)
    live = stored(desired)
    assert "ingress" not in live["spec"]  # what the API server keeps of `ingress: []`
    live["spec"]["ingress"] = [{}]
    assert paths(check(desired, live)) == {"spec.ingress": True}
    assert needs_apply(desired, live) == "drift"


def test_an_allow_all_rule_appended_to_a_web_apps_policy_is_put_back() -> None:
    desired = rendered("NetworkPolicy")
    live = stored(desired)
    live["spec"]["ingress"].append({})
    assert paths(check(desired, live)) == {"spec.ingress": True}


def test_a_host_path_volume_added_to_the_pod_template_is_reported() -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["volumes"].append({"name": "host", "hostPath": {"path": "/", "type": ""}})
    assert paths(check(desired, live)) == {f"{POD}.volumes[name=host].hostPath": False}
    assert needs_apply(desired, live) is None  # the drift test alone cannot see it


def test_host_network_on_the_pod_template_is_put_back() -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["hostNetwork"] = True
    assert paths(check(desired, live)) == {f"{POD}.hostNetwork": True}
    assert needs_apply(desired, live) == "drift"  # rendered explicitly: owned, so drift sees it


# -- more of the restricted profile ------------------------------------------------------------


@pytest.mark.parametrize("field", ["hostPID", "hostIPC"])
def test_other_host_namespaces_are_put_back(field: str) -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)[field] = True
    assert paths(check(desired, live)) == {f"{POD}.{field}": True}
    assert needs_apply(desired, live) == "drift"


def test_our_own_volume_turned_into_a_host_path_is_reported() -> None:
    """The operator owns the `tmp` entry, not the hostPath source someone else put in it."""
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["volumes"][0] = {"name": "tmp", "hostPath": {"path": "/var"}}
    assert paths(check(desired, live)) == {f"{POD}.volumes[name=tmp].hostPath": False}


@pytest.mark.parametrize(
    "volume",
    [
        {"configMap": {"name": "c"}},
        {"projected": {"sources": []}},
        {"persistentVolumeClaim": {"claimName": "p"}},
        {"csi": {"driver": "d"}},
        {"image": {"reference": "x"}},
        {"downwardAPI": {}},
        {"ephemeral": {}},
    ],
)
def test_volume_types_restricted_allows_are_fine(volume: Obj) -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["volumes"].append({"name": "extra", **volume})
    assert check(desired, live) == []


@pytest.mark.parametrize("source", ["nfs", "iscsi", "gitRepo", "cephfs"])
def test_volume_types_restricted_refuses_are_reported(source: str) -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["volumes"].append({"name": "extra", source: {}})
    assert paths(check(desired, live)) == {f"{POD}.volumes[name=extra].{source}": False}


def test_a_compliant_injected_sidecar_is_fine() -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["containers"].append(sidecar())
    pod(live)["initContainers"] = [{**sidecar(), "name": "init"}]
    assert check(desired, live) == []


@pytest.mark.parametrize(
    ("field", "security", "path"),
    [
        ("containers", {"privileged": True}, "privileged"),
        ("containers", {"allowPrivilegeEscalation": None}, "allowPrivilegeEscalation"),
        ("initContainers", {"allowPrivilegeEscalation": True}, "allowPrivilegeEscalation"),
        ("ephemeralContainers", {"capabilities": {}}, "capabilities.drop"),
        (
            "containers",
            {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}},
            "capabilities.add",
        ),
        ("containers", {"runAsNonRoot": False}, "runAsNonRoot"),
        ("containers", {"runAsUser": 0}, "runAsUser"),
        ("containers", {"seccompProfile": {"type": "Unconfined"}}, "seccompProfile.type"),
        ("containers", {"procMount": "Unmasked"}, "procMount"),
        ("containers", {"seLinuxOptions": {"type": "spc_t"}}, "seLinuxOptions.type"),
        ("containers", {"seLinuxOptions": {"user": "root"}}, "seLinuxOptions.user"),
        ("containers", {"appArmorProfile": {"type": "Unconfined"}}, "appArmorProfile.type"),
        ("containers", {"windowsOptions": {"hostProcess": True}}, "windowsOptions.hostProcess"),
    ],
)
def test_every_container_is_held_to_restricted_and_others_are_reported(
    field: str, security: dict[str, Any], path: str
) -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    container = sidecar(**security)
    container["securityContext"] = {
        k: v for k, v in container["securityContext"].items() if v is not None
    }
    pod(live).setdefault(field, []).append(container)
    assert paths(check(desired, live)) == {
        f"{POD}.{field}[name=proxy].securityContext.{path}": False
    }


def test_net_bind_service_is_the_one_capability_restricted_lets_a_container_add() -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["containers"].append(
        sidecar(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
    )
    assert check(desired, live) == []


def test_a_sidecar_relying_on_the_pods_non_root_is_fine_until_the_pod_says_otherwise() -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    proxy = sidecar()
    del proxy["securityContext"]["runAsNonRoot"], proxy["securityContext"]["seccompProfile"]
    pod(live)["containers"].append(proxy)
    assert check(desired, live) == []  # the pod's runAsNonRoot and seccomp cover it
    pod(live)["securityContext"]["runAsNonRoot"] = False
    pod(live)["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    assert paths(check(desired, live)) == {
        f"{POD}.securityContext.runAsNonRoot": True,  # ours: put back, which covers it again
        f"{POD}.securityContext.seccompProfile.type": True,
        f"{POD}.containers[name=proxy].securityContext.runAsNonRoot": False,
        f"{POD}.containers[name=proxy].securityContext.seccompProfile.type": False,
    }


def test_a_user_namespace_relaxes_the_root_checks_only() -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["hostUsers"] = False
    pod(live)["containers"].append(sidecar(runAsNonRoot=False, runAsUser=0, privileged=True))
    assert paths(check(desired, live)) == {
        f"{POD}.containers[name=proxy].securityContext.privileged": False
    }


@pytest.mark.parametrize(
    ("field", "value", "path", "restore"),
    [
        ("privileged", True, "privileged", True),
        ("allowPrivilegeEscalation", True, "allowPrivilegeEscalation", True),
        ("readOnlyRootFilesystem", False, "readOnlyRootFilesystem", True),
        ("runAsUser", 0, "runAsUser", True),
        ("capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}, "capabilities.add", True),
        ("capabilities", {}, "capabilities.drop", True),
        ("procMount", "Unmasked", "procMount", False),
    ],
)
def test_our_containers_rendered_fields_are_put_back_the_rest_reported(
    field: str, value: Any, path: str, restore: bool
) -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["containers"][0]["securityContext"][field] = value
    assert paths(check(desired, live)) == {
        f"{POD}.containers[name=app].securityContext.{path}": restore
    }


def test_pod_level_sysctls_host_ports_and_probe_hosts() -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["securityContext"]["sysctls"] = [
        {"name": "net.ipv4.tcp_syncookies", "value": "1"},  # a safe one
        {"name": "kernel.msgmax", "value": "65536"},
    ]
    app = pod(live)["containers"][0]
    app["ports"][0]["hostPort"] = 8000
    app["livenessProbe"]["httpGet"]["host"] = "169.254.169.254"
    app.setdefault("lifecycle", {})["preStop"] = {"httpGet": {"port": 80, "host": "10.0.0.1"}}
    assert paths(check(desired, live)) == {
        f"{POD}.securityContext.sysctls[name=kernel.msgmax]": False,
        f"{POD}.containers[name=app].ports[containerPort=8000].hostPort": False,
        f"{POD}.containers[name=app].livenessProbe.httpGet.host": False,
        f"{POD}.containers[name=app].lifecycle.preStop.httpGet.host": False,
    }


def test_app_armor_annotations_on_the_template() -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    annotations = live["spec"]["template"]["metadata"]["annotations"]
    annotations["container.apparmor.security.beta.kubernetes.io/app"] = "runtime/default"
    annotations["container.apparmor.security.beta.kubernetes.io/proxy"] = "unconfined"
    assert paths(check(desired, live)) == {
        "spec.template.metadata.annotations"
        "[container.apparmor.security.beta.kubernetes.io/proxy]": False
    }


def test_the_token_mount_turned_on_is_put_back_on_pod_and_service_account() -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["automountServiceAccountToken"] = True
    assert paths(check(desired, live)) == {f"{POD}.automountServiceAccountToken": True}
    account = rendered("ServiceAccount")
    live = stored(account)
    live["automountServiceAccountToken"] = True
    assert paths(check(account, live)) == {"automountServiceAccountToken": True}
    asked = rendered("ServiceAccount", automountServiceAccountToken=True)
    assert check(asked, stored(asked)) == []


# -- the NetworkPolicy, exactly as rendered ------------------------------------------------------


def _label(key: str, value: str) -> Callable[[Obj], None]:
    return lambda s: s["podSelector"]["matchLabels"].update({key: value})


INSTANCE = "app.kubernetes.io/instance"
OPEN = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]


@pytest.mark.parametrize(
    ("edit", "path", "restore"),
    [
        (lambda s: s.update(policyTypes=["Egress"]), "spec.policyTypes", True),
        (lambda s: s.pop("policyTypes"), "spec.policyTypes", True),
        (lambda s: s["ingress"][0].update({"from": OPEN}), "spec.ingress", True),
        (lambda s: s["ingress"][0].pop("ports"), "spec.ingress", True),
        (lambda s: s.update(egress=[{"to": [{"podSelector": {}}]}]), "spec.egress", True),
        (_label("team", "a"), "spec.podSelector.matchLabels[team]", False),
        (_label(INSTANCE, "x"), f"spec.podSelector.matchLabels[{INSTANCE}]", True),
        (
            lambda s: s["podSelector"].update(matchExpressions=[{"key": "a", "operator": "In"}]),
            "spec.podSelector.matchExpressions",
            False,
        ),
    ],
)
def test_a_network_policy_must_be_exactly_as_rendered(edit: Any, path: str, restore: bool) -> None:
    desired = rendered("NetworkPolicy")
    live = stored(desired)
    edit(live["spec"])
    assert paths(check(desired, live)) == {path: restore}


def test_a_policy_narrowed_by_protocol_defaults_is_still_the_same() -> None:
    """The API server fills in what the renderer already says; nothing differs."""
    desired = rendered("NetworkPolicy")
    live = stored(desired)
    live["spec"]["ingress"][0]["ports"][0]["protocol"] = "TCP"
    assert check(desired, live) == []


def test_findings_read_well() -> None:
    desired = rendered("Deployment")
    live = stored(desired)
    pod(live)["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    (finding,) = check(desired, live)
    assert str(finding) == (f"{POD}.volumes[name=host].hostPath (hostPath volumes are not allowed)")


def test_kinds_without_hardening_have_no_findings() -> None:
    desired = rendered("Service")
    live = stored(desired)
    live["spec"]["type"] = "NodePort"
    assert check(desired, live) == []
