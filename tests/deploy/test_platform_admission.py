"""deploy/admission/platformpolicy.yaml on a real API server: the PythonAppPolicy `cluster` is
the params of an admission policy that refuses what `pythonapp validate --policy` refuses, with
the same messages.

The CRDs, the policy and its binding are applied exactly as `kubectl kustomize deploy/` builds
them, then a PythonAppPolicy is created and each shared case (tests/policy_cases.py) is applied
(dry run): refused with the rule and field named, the message being the offline line without
its file and object; admitted when within the policy. Then: an UPDATE is checked only for what
it changes (an app admitted under an older policy can still be scaled), and without a policy
object everything is admitted (parameterNotFoundAction: Allow).

The API server reads params through an informer: a policy object created, changed or deleted
takes effect a moment later, so each change waits (bounded) for a probe request to show it.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from pydantic import ValidationError
from tests.conftest import wait_for
from tests.deploy.tools import BASE, kustomize, remove_policy, run
from tests.policy_cases import CASES, FOREIGN_IMAGE, POLICY_SPEC, app, policy_doc

from pythonapp_operator.api.policy import PythonAppPolicySpec, policy_from
from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.platformpolicy import violations

pytestmark = pytest.mark.cluster

GROUP, VERSION = "pythonapp.dev", "v1alpha1"
NAME = "pythonapp-platform-policy"
ADMISSION_KINDS = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
#: how long the API server may take to see a new policy or params object
ACTIVE_WITHIN_SECONDS = 60


class Cluster:
    """The admin's view: PythonApps in two namespaces, and the one policy object."""

    def __init__(self, api: client.CustomObjectsApi, allowed: str, other: str) -> None:
        self.api, self.allowed, self.other = api, allowed, other

    def namespace_of(self, case_namespace: str) -> str:
        """The cases say `web` for a namespace the policy lets expose apps, others for not."""
        return self.allowed if case_namespace == "web" else self.other

    def placed(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = copy.deepcopy(doc)
        doc["metadata"]["namespace"] = self.namespace_of(doc["metadata"]["namespace"])
        return doc

    def policy_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A policy spec whose allowed namespace is this test's."""
        spec = copy.deepcopy(spec)
        if "expose" in spec:
            spec["expose"]["allowedNamespaces"] = [self.allowed]
        return spec

    def create(self, doc: dict[str, Any], dry_run: bool = True) -> object:
        ns = doc["metadata"]["namespace"]
        return self.api.create_namespaced_custom_object(
            GROUP, VERSION, ns, "pythonapps", doc, dry_run="All" if dry_run else None
        )

    def patch(self, ns: str, name: str, body: dict[str, Any]) -> object:
        return self.api.patch_namespaced_custom_object(GROUP, VERSION, ns, "pythonapps", name, body)

    def set_policy(self, spec: dict[str, Any] | None) -> None:
        """Apply (or with None delete) the PythonAppPolicy `cluster`."""
        if spec is None:
            try:
                self.api.delete_cluster_custom_object(
                    GROUP, VERSION, "pythonapppolicies", "cluster"
                )
            except ApiException as e:
                if e.status != 404:
                    raise
            return
        body = policy_doc(spec)
        self.api.patch_cluster_custom_object(
            GROUP,
            VERSION,
            "pythonapppolicies",
            "cluster",
            body,
            field_manager="tests",
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    def refused(self, doc: dict[str, Any]) -> str | None:
        """The API server's message if it refuses ``doc`` (a dry-run create), else None."""
        try:
            self.create(doc)
        except ApiException as e:
            assert e.status in (403, 422), e.body
            return str(json.loads(e.body)["message"])
        return None


def refusal(call: Callable[[], object]) -> str:
    try:
        call()
    except ApiException as e:
        assert e.status == 403, f"expected 403, got {e.status}: {e.body}"
        return str(json.loads(e.body)["message"])
    pytest.fail("the request was admitted; expected the platform policy to refuse it")


@pytest.fixture(scope="module")
def cluster_policy(
    kubectl: Path,
    kubeconfig_path: Path,
    custom_objects: client.CustomObjectsApi,
    core_v1: client.CoreV1Api,
    namespace_for_module: str,
) -> Iterator[Cluster]:
    docs = [
        d
        for d in kustomize(BASE)
        if d["kind"] in ADMISSION_KINDS or d["kind"] == "CustomResourceDefinition"
    ]
    admin = [kubectl, "--kubeconfig", kubeconfig_path]
    proc: subprocess.CompletedProcess[str] = run(
        [*admin, "apply", "--server-side", "--force-conflicts", "-f", "-"],
        input=yaml.safe_dump_all(docs),
    )
    assert proc.returncode == 0, f"kubectl apply failed:\n{proc.stderr}"
    for crd in ("crd/pythonapps.pythonapp.dev", "crd/pythonapppolicies.pythonapp.dev"):
        proc = run([*admin, "wait", "--for=condition=Established", crd, "--timeout=60s"])
        assert proc.returncode == 0, proc.stderr
    other = f"{namespace_for_module}-x"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    c = Cluster(custom_objects, namespace_for_module, other)
    c.set_policy(c.policy_spec(POLICY_SPEC))
    bad = c.placed(app(image=FOREIGN_IMAGE))
    wait_for(
        lambda: NAME in (c.refused(bad) or ""),
        ACTIVE_WITHIN_SECONDS,
        "the platform policy to refuse an image from a foreign registry",
    )
    yield c
    c.set_policy(None)
    remove_policy(kubectl, kubeconfig_path)
    core_v1.delete_namespace(other)


@pytest.mark.parametrize(
    ("doc", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_api_server_refuses_what_validate_policy_refuses_with_its_message(
    cluster_policy: Cluster, doc: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    placed = cluster_policy.placed(doc)
    parsed, problems = validate_document(placed)
    assert parsed is not None, problems
    policy = PythonAppPolicySpec.model_validate(cluster_policy.policy_spec(POLICY_SPEC))
    offline = [f"{p.path}: {p.message}" for p in violations(parsed, policy)]
    assert len(offline) == len(expected)
    message = cluster_policy.refused(placed)
    if not expected:
        assert message is None, message
        return
    assert message is not None, "admitted; the policy should refuse it"
    assert f"ValidatingAdmissionPolicy '{NAME}'" in message, message
    assert offline[0] in message, f"offline: {offline[0]}\nAPI server: {message}"


def test_an_update_is_checked_only_for_what_it_changes(cluster_policy: Cluster) -> None:
    """Created within the policy; the policy then narrows its registries: the app is still
    scaled and labelled (what runs does not change), but a new image must be allowed."""
    c = cluster_policy
    doc = c.placed(app())
    doc["metadata"]["name"] = "grandfathered"
    ns = doc["metadata"]["namespace"]
    c.create(doc, dry_run=False)
    narrower = c.policy_spec({**POLICY_SPEC, "allowedRegistries": ["registry.example.com/"]})
    try:
        c.set_policy(narrower)
        probe = c.placed(app())
        wait_for(
            lambda: c.refused(probe), ACTIVE_WITHIN_SECONDS, "the narrower policy to take effect"
        )
        c.patch(ns, "grandfathered", {"spec": {"replicas": 3}, "metadata": {"labels": {"a": "b"}}})
        new_image = doc["spec"]["image"].replace("1.0.0", "1.0.1")
        message = refusal(lambda: c.patch(ns, "grandfathered", {"spec": {"image": new_image}}))
        assert "spec.image: pythonapp-platform-policy: allowedRegistries: " in message, message
        assert "(registry.example.com/)" in message, message
    finally:
        c.set_policy(c.policy_spec(POLICY_SPEC))
        wait_for(
            lambda: c.refused(c.placed(app())) is None,
            ACTIVE_WITHIN_SECONDS,
            "the policy to be restored",
        )


def test_without_a_policy_object_everything_is_admitted(cluster_policy: Cluster) -> None:
    c = cluster_policy
    bad = c.placed(app(image=FOREIGN_IMAGE))
    assert c.refused(bad) is not None  # the control: refused while the policy exists
    try:
        c.set_policy(None)
        wait_for(
            lambda: c.refused(bad) is None,
            ACTIVE_WITHIN_SECONDS,
            "an app to be admitted without a policy object",
        )
        for _id, doc, _expected in CASES:
            assert c.refused(c.placed(doc)) is None, _id
    finally:
        c.set_policy(c.policy_spec(POLICY_SPEC))


@pytest.mark.parametrize(
    ("name", "spec", "said"),
    [
        ("team-a", {}, "must be 'cluster'"),
        ("cluster", {"allowedRegistries": ["ghcr.io/acme"]}, "must be a registry prefix"),
        ("cluster", {"expose": {"allowedNamespaces": ["Bad_NS"]}}, "must be a namespace name"),
        ("cluster", {"resources": {"maxLimits": {"memory": "1.5"}}}, "whole number of bytes"),
    ],
)
def test_the_policy_crd_refuses_what_the_models_refuse(
    cluster_policy: Cluster, name: str, spec: dict[str, Any], said: str
) -> None:
    """The CRD's CEL twins of the models' checks, with the same messages (dry run: the module's
    own policy object is left as it is)."""
    doc = policy_doc(spec)
    doc["metadata"]["name"] = name
    with pytest.raises(ValidationError) as offline:
        policy_from(doc)
    assert said in str(offline.value)
    try:
        cluster_policy.api.create_cluster_custom_object(
            GROUP, VERSION, "pythonapppolicies", doc, dry_run="All"
        )
    except ApiException as e:
        assert e.status == 422, e.body
        assert said in str(json.loads(e.body)["message"]), e.body
        return
    pytest.fail("the API server admitted a policy the models refuse")
