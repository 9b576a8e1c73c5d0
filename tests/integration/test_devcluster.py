"""The local control plane behaves like a real cluster where the operator depends on it.

Each test checks one behaviour the product's tests will rely on: controllers (Deployment
rollout, garbage collection, namespace deletion), the scheduler plus kwok (pods Running/Ready),
API machinery (CRD + CEL validation), admission (Pod Security), authorisation (RBAC), and the
harness itself (status, version, repair of a crashed component).
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.conftest import http_status

from pythonapp_operator import devcluster
from pythonapp_operator.devcluster import components, nodes

pytestmark = pytest.mark.cluster

PAUSE = "registry.k8s.io/pause:3.10"  # never pulled: kwok fakes the containers


def restricted_pod_spec() -> client.V1PodSpec:
    """A pod spec that satisfies the Pod Security 'restricted' profile."""
    return client.V1PodSpec(
        security_context=client.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=65532,
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
        ),
        containers=[
            client.V1Container(
                name="app",
                image=PAUSE,
                security_context=client.V1SecurityContext(
                    allow_privilege_escalation=False,
                    capabilities=client.V1Capabilities(drop=["ALL"]),
                ),
            )
        ],
    )


def pod_ready(pod: client.V1Pod) -> bool:
    conds = (pod.status and pod.status.conditions) or []
    return (
        pod.status is not None
        and pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in conds)
    )


def status_of(e: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(e.body) if e.body else {}
    return body


def test_server_reports_pinned_version(cluster: Any, api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()
    if cluster.is_devcluster:
        assert info.git_version == devcluster.K8S_VERSION == "v1.36.3"
    else:
        assert info.major == "1"


def test_nodes_ready_in_three_zones(cluster: Any, kubectl: Path, kubeconfig_path: Path) -> None:
    if not cluster.is_devcluster:
        pytest.skip("the fake nodes are specific to `pythonapp dev`")
    out = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig_path), "get", "nodes", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    items = {n["metadata"]["name"]: n for n in json.loads(out)["items"]}
    assert set(nodes.NODE_NAMES) <= set(items)
    zones = set()
    for name in nodes.NODE_NAMES:
        node = items[name]
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", name
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
        assert not [t for t in node["spec"].get("taints", []) if t["effect"] == "NoSchedule"]
        zones.add(node["metadata"]["labels"]["topology.kubernetes.io/zone"])
    assert len(zones) == 3


def test_deployment_becomes_available(
    cluster: Any,
    apps_v1: client.AppsV1Api,
    core_v1: client.CoreV1Api,
    namespace: str,
    wait_until: Callable[..., Any],
) -> None:
    labels = {"app": "web"}
    apps_v1.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=3,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels), spec=restricted_pod_spec()
                ),
            ),
        ),
    )

    def available() -> bool:
        d = apps_v1.read_namespaced_deployment_status("web", namespace)
        conds = {c.type: c.status for c in d.status.conditions or []}
        return d.status.available_replicas == 3 and conds.get("Available") == "True"

    wait_until(available, 90, "Deployment web Available with 3 replicas")
    pods = core_v1.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert all(pod_ready(p) for p in pods)
    # ReplicaSet owns the pods (Deployment -> ReplicaSet -> Pod done by the controller-manager)
    assert {p.metadata.owner_references[0].kind for p in pods} == {"ReplicaSet"}
    for p in pods:  # scheduled onto nodes; on the dev cluster kwok's fake (never contacted) IPs
        assert p.spec.node_name is not None
        if cluster.is_devcluster:
            assert p.spec.node_name in nodes.NODE_NAMES
            assert ipaddress.ip_address(p.status.pod_ip) in ipaddress.ip_network(
                components.POD_CIDR
            )


def test_owned_object_is_garbage_collected(
    core_v1: client.CoreV1Api, namespace: str, wait_until: Callable[..., Any]
) -> None:
    owner = core_v1.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core_v1.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="child", owner_references=[ref])),
    )
    unowned = core_v1.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bystander"))
    )
    core_v1.delete_namespaced_config_map("owner", namespace)

    wait_until(
        lambda: http_status(lambda: core_v1.read_namespaced_config_map("child", namespace)) == 404,
        60,
        "garbage collection of ConfigMap child",
    )
    still = core_v1.read_namespaced_config_map("bystander", namespace)
    assert still.metadata.uid == unowned.metadata.uid


def test_namespace_deletion_completes(
    core_v1: client.CoreV1Api, wait_until: Callable[..., Any]
) -> None:
    name = f"t-nsdel-{secrets.token_hex(3)}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_until(
        lambda: _exists(lambda: core_v1.read_namespaced_service_account("default", name)),
        60,
        "default ServiceAccount",
    )
    core_v1.create_namespaced_config_map(
        name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="data"))
    )
    core_v1.create_namespaced_pod(
        name, client.V1Pod(metadata=client.V1ObjectMeta(name="p"), spec=restricted_pod_spec())
    )
    wait_until(lambda: pod_ready(core_v1.read_namespaced_pod("p", name)), 60, "pod p Ready")
    core_v1.delete_namespace(name)
    # Needs the namespace controller to empty it, and kwok to finish the pod's deletion.
    wait_until(
        lambda: not _exists(lambda: core_v1.read_namespace(name)),
        120,
        f"namespace {name} to disappear",
    )


def _exists(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


def test_crd_established_and_cel_rule_enforced(
    apiextensions_v1: client.ApiextensionsV1Api,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
    wait_until: Callable[..., Any],
) -> None:
    group = f"t{secrets.token_hex(3)}.test.pythonapp.dev"  # unique: CRDs are cluster-wide
    crd_name = f"widgets.{group}"
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "minReplicas": {"type": "integer"},
                    "maxReplicas": {"type": "integer"},
                },
                "x-kubernetes-validations": [
                    {
                        "rule": "self.minReplicas <= self.maxReplicas",
                        "message": "minReplicas must not exceed maxReplicas",
                    }
                ],
            }
        },
    }
    body = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }
    apiextensions_v1.create_custom_resource_definition(body)
    try:

        def established() -> bool:
            crd = apiextensions_v1.read_custom_resource_definition(crd_name)
            return any(
                c.type == "Established" and c.status == "True"
                for c in (crd.status.conditions or [])
            )

        wait_until(established, 60, f"CRD {crd_name} Established")

        def widget(name: str, lo: int, hi: int) -> dict[str, Any]:
            return {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": {"minReplicas": lo, "maxReplicas": hi},
            }

        # The first create after Established can still race discovery: retry on 404 only.
        wait_until(
            lambda: _create_widget(custom_objects, group, namespace, widget("good", 1, 3)),
            30,
            "creating a valid Widget",
        )
        with pytest.raises(ApiException) as err:
            custom_objects.create_namespaced_custom_object(
                group, "v1", namespace, "widgets", widget("bad", 5, 2)
            )
        assert err.value.status == 422
        assert "minReplicas must not exceed maxReplicas" in err.value.body
        assert not _exists(
            lambda: custom_objects.get_namespaced_custom_object(
                group, "v1", namespace, "widgets", "bad"
            )
        )
    finally:
        apiextensions_v1.delete_custom_resource_definition(crd_name)


def _create_widget(api: client.CustomObjectsApi, group: str, ns: str, obj: dict[str, Any]) -> bool:
    try:
        api.create_namespaced_custom_object(group, "v1", ns, "widgets", obj)
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


def test_pod_security_restricted_is_enforced(
    core_v1: client.CoreV1Api, namespace: str, wait_until: Callable[..., Any]
) -> None:
    core_v1.patch_namespace(
        namespace,
        {
            "metadata": {
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                }
            }
        },
    )
    root = client.V1Pod(
        metadata=client.V1ObjectMeta(name="root"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="app",
                    image=PAUSE,
                    security_context=client.V1SecurityContext(run_as_user=0),
                )
            ]
        ),
    )

    def refusal() -> ApiException | None:
        """The API server's refusal of the root pod; None (and the pod removed) if admitted.

        Pod Security admission reads the namespace's labels from its informer, which learns of
        the label a moment after the patch returns: until then a pod is judged unlabelled."""
        try:
            core_v1.create_namespaced_pod(namespace, root)
        except ApiException as e:
            return e
        core_v1.delete_namespaced_pod("root", namespace, grace_period_seconds=0)
        wait_until(lambda: http_status(lambda: core_v1.read_namespaced_pod("root", namespace))
                   == 404, 30, "the admitted root pod gone")  # fmt: skip
        return None

    err = wait_until(refusal, 30, "the root pod refused")
    assert err.status == 403, err.body
    assert "violates PodSecurity" in err.body
    assert "restricted" in err.body

    ok = client.V1Pod(metadata=client.V1ObjectMeta(name="ok"), spec=restricted_pod_spec())
    core_v1.create_namespaced_pod(namespace, ok)
    wait_until(
        lambda: pod_ready(core_v1.read_namespaced_pod("ok", namespace)), 60, "restricted pod Ready"
    )


def test_rbac_refuses_identity_without_bindings(
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    rbac_v1: client.RbacAuthorizationV1Api,
    namespace: str,
    wait_until: Callable[..., Any],
) -> None:
    core_v1.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    token = core_v1.create_namespaced_service_account_token(
        "nobody",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        ),
    ).status.token
    admin = api_client.configuration
    cfg = client.Configuration()
    cfg.host = admin.host
    cfg.ssl_ca_cert = admin.ssl_ca_cert
    cfg.verify_ssl = True
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    with client.ApiClient(cfg) as sa_client:
        # Authenticated (so a refusal below is authorisation, not a bad token)...
        who = client.AuthenticationV1Api(sa_client).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
        assert who.status.user_info.username == f"system:serviceaccount:{namespace}:nobody"
        sa_core = client.CoreV1Api(sa_client)
        # ...and refused by RBAC, in its own namespace and cluster-wide.
        for call in (
            lambda: sa_core.list_namespaced_pod(namespace),
            lambda: sa_core.list_namespaced_secret("kube-system"),
            sa_core.list_node,
        ):
            with pytest.raises(ApiException) as err:
                call()
            assert err.value.status == 403
            assert status_of(err.value).get("reason") == "Forbidden"

        # Grant exactly "list pods here": then that call works (RBAC is evaluated, not blanket).
        rbac_v1.create_namespaced_role(
            namespace,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="pod-lister"),
                rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])],
            ),
        )
        rbac_v1.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="pod-lister"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="pod-lister"
                ),
                subjects=[
                    client.RbacV1Subject(kind="ServiceAccount", name="nobody", namespace=namespace)
                ],
            ),
        )

        wait_until(
            lambda: http_status(lambda: sa_core.list_namespaced_pod(namespace)) == 200,
            30,
            "RoleBinding to take effect",
        )
        with pytest.raises(ApiException) as err:
            sa_core.list_namespaced_secret(namespace)
        assert err.value.status == 403


def test_status_reports_live_components(cluster: Any) -> None:
    if not cluster.is_devcluster:
        pytest.skip("only `pythonapp dev` has component processes")
    st = devcluster.status()
    assert st.running and st.ready
    # the real node's (tests/integration/test_real_node.py adds it) come last
    real = list(devcluster.realnode.ORDER) if st.real_node else []
    assert [c.name for c in st.components] == list(components.ORDER) + real
    for c in st.components:
        assert c.alive and c.pid is not None
        assert Path(f"/proc/{c.pid}").exists()
        if c.name == "containerd":  # its gRPC socket, under the state dir
            assert c.address == f"unix://{cluster.state_dir}/realnode/containerd.sock"
        elif c.name == "kubelet":  # at the node IP, on the real node's bridge
            assert st.real_node is not None
            assert c.address.startswith(f"https://{st.real_node['node_ip']}:")
        elif c.name == "api-forward":  # the API server's port, on the bridge address only
            assert st.real_node is not None
            api_port = next(x for x in st.components if x.name == "kube-apiserver").address
            assert c.address == f"https://{st.real_node['node_ip']}:{api_port.rsplit(':', 1)[1]}"
        else:
            assert c.address.startswith(("http://127.0.0.1:", "https://127.0.0.1:"))
    as_json = st.to_json()
    json.dumps(as_json)  # serialisable as is
    assert {c["name"]: c["pid"] for c in as_json["components"]} == {
        c.name: c.pid for c in st.components
    }
    assert Path(as_json["kubeconfig"]) == devcluster.kubeconfig_path() == cluster.kubeconfig


def test_crashed_component_is_reported_then_repaired(
    cluster: Any, core_v1: client.CoreV1Api, namespace: str, wait_until: Callable[..., Any]
) -> None:
    """Kill kwok: status must say so, and ``up`` must restart only kwok (same API server)."""
    if not cluster.is_devcluster:
        pytest.skip("only `pythonapp dev` has component processes")
    before = {c.name: c.pid for c in devcluster.status().components}
    assert before["kwok"] is not None
    os.kill(before["kwok"], signal.SIGKILL)

    def kwok_dead() -> bool:
        st = devcluster.status()
        return not st.running and not next(c for c in st.components if c.name == "kwok").alive

    wait_until(kwok_dead, 10, "status to report kwok dead")
    after_up = devcluster.up(log=lambda _line: None)
    after = {c.name: c.pid for c in after_up.components}
    assert after_up.running and all(c.alive for c in after_up.components)
    assert after["kwok"] != before["kwok"]
    assert {k: v for k, v in after.items() if k != "kwok"} == {
        k: v for k, v in before.items() if k != "kwok"
    }
    # The admin client from before still works (same server, same certificates).
    assert core_v1.read_node(nodes.NODE_NAMES[0]).metadata.name == nodes.NODE_NAMES[0]
    # The new kwok drives pods at once (it does not wait for the dead one's node leases).
    core_v1.create_namespaced_pod(
        namespace, client.V1Pod(metadata=client.V1ObjectMeta(name="p"), spec=restricted_pod_spec())
    )
    wait_until(
        lambda: pod_ready(core_v1.read_namespaced_pod("p", namespace)),
        30,  # under the 40 s a dead node's lease takes to lapse; room for kwok's own start-up
        "a pod Ready right after kwok's restart",
    )


def test_a_draining_api_server_is_replaced_not_the_cluster(
    cluster: Any, core_v1: client.CoreV1Api
) -> None:
    """After SIGTERM kube-apiserver stays alive ~60 s without listening while it drains; ``up``
    in that window used to wait on it, see it exit, call the repair failed and start a new
    cluster (new CA, new ports). It must stop the old process and restart it in place."""
    if not cluster.is_devcluster:
        pytest.skip("only `pythonapp dev` has component processes")
    before = devcluster.status()
    old = next(c for c in before.components if c.name == "kube-apiserver")
    assert old.pid is not None
    ca = (cluster.state_dir / "pki" / "ca.crt").read_bytes()
    os.kill(old.pid, signal.SIGTERM)
    after = devcluster.up(log=lambda _line: None)
    assert after.ready
    assert after.server == before.server
    assert (cluster.state_dir / "pki" / "ca.crt").read_bytes() == ca
    new = next(c for c in after.components if c.name == "kube-apiserver")
    assert new.pid != old.pid
    others = {c.name: c.pid for c in after.components if c.name != "kube-apiserver"}
    assert others == {c.name: c.pid for c in before.components if c.name != "kube-apiserver"}
    # the session's admin client (same server, same certificates) still works
    assert core_v1.read_node(nodes.NODE_NAMES[0]).metadata.name == nodes.NODE_NAMES[0]
