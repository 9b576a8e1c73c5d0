"""The PythonAppPolicy API: its models refuse what its generated CRD refuses, and the CRD is in
step with the files in the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pythonapp_operator.api.crd import policy_crd
from pythonapp_operator.api.policy import POLICY_NAME, PythonAppPolicy, policy_from
from pythonapp_operator.cli import main
from pythonapp_operator.yamlio import dump_all

ROOT = Path(__file__).resolve().parents[2]


def _policy(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pythonapp.dev/v1alpha1",
        "kind": "PythonAppPolicy",
        "metadata": {"name": POLICY_NAME},
        "spec": spec,
    }


def test_policy_crd_files_are_byte_identical_to_pythonapp_crd_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    generated = dump_all([policy_crd()])
    for path in (
        ROOT / "crds/pythonapppolicies.yaml",
        ROOT / "deploy/base/crds/pythonapppolicies.yaml",
    ):
        assert path.read_text() == generated, f"{path} is out of date: run `make crd`"
    assert main(["crd", "--policy"]) == 0
    assert capsys.readouterr().out == generated


def test_policy_crd_is_cluster_scoped_and_names_the_one_object() -> None:
    c = policy_crd()
    assert c["spec"]["scope"] == "Cluster"
    assert c["metadata"]["name"] == "pythonapppolicies.pythonapp.dev"
    root = c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert root["x-kubernetes-validations"][0]["rule"] == "self.metadata.name == 'cluster'"
    spec = root["properties"]["spec"]["properties"]
    assert set(spec) == {"allowedRegistries", "resources", "imagePullSecrets", "expose"}
    assert set(spec["expose"]["properties"]) == {
        "allowedNamespaces",
        "gateway",
        "ingressClass",
        "routeApi",
    }
    assert set(spec["resources"]["properties"]) == {"defaultRequests", "defaultLimits", "maxLimits"}


def test_a_full_policy_parses() -> None:
    policy = policy_from(
        _policy(
            allowedRegistries=["ghcr.io/acme/", "registry.example.com:5000/team/"],
            resources={
                "defaultRequests": {"cpu": "200m"},
                "defaultLimits": {"cpu": "500m", "ephemeral-storage": "1Gi"},
                "maxLimits": {"cpu": 2, "memory": "4Gi"},
            },
            imagePullSecrets=[{"name": "regcred"}],
            expose={
                "allowedNamespaces": ["web"],
                "gateway": {"namespace": "gateway-system", "name": "public"},
                "ingressClass": "nginx",
                "routeApi": "ingress",
            },
        )
    )
    assert policy.spec.resources is not None and policy.spec.resources.max_limits is not None
    assert policy.spec.resources.max_limits.cpu == "2"
    assert policy.spec.expose is not None and policy.spec.expose.allowed_namespaces == ["web"]


def test_an_empty_policy_says_nothing() -> None:
    policy = PythonAppPolicy.model_validate(
        {
            "apiVersion": "pythonapp.dev/v1alpha1",
            "kind": "PythonAppPolicy",
            "metadata": {"name": "cluster"},
        }
    )
    assert policy.spec.allowed_registries is None
    assert policy.spec.resources is None and policy.spec.expose is None
    assert policy.spec.image_pull_secrets == []


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({**_policy(), "metadata": {"name": "team-a"}}, "metadata.name"),
        (_policy(allowedRegistries=["ghcr.io/acme"]), "allowedRegistries"),
        (_policy(allowedRegistries=["GHCR.io/"]), "allowedRegistries"),
        (_policy(resources={"maxLimits": {"cpu": "lots"}}), "maxLimits"),
        (_policy(expose={"allowedNamespaces": ["Not_A_Namespace"]}), "allowedNamespaces"),
        (_policy(expose={"routeApi": "gateway"}), "routeApi"),
        (_policy(registries=["ghcr.io/"]), "registries"),
        # every app sets limits.memory: a default would never apply
        (_policy(resources={"defaultLimits": {"memory": "1Gi"}}), "defaultLimits.memory"),
    ],
)
def test_a_bad_policy_is_refused(doc: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as info:
        policy_from(doc)
    assert where in str(info.value)
