"""deploy/admission on a real API server: a PythonApp names only Secrets its author may read.

The CRD and the ValidatingAdmissionPolicy with its binding are applied exactly as `kubectl
kustomize deploy/` builds them (not a copy), then requests are made as other users through
impersonation (the admin kubeconfig is in system:masters, which may impersonate):

* a user who may create PythonApps but not get the Secret is refused, with the policy's message
  (and the same user creating an app without Secrets is admitted: the refusal is the Secret's);
* granted get on that one Secret (a Role with resourceNames), admitted; another Secret still not;
* a ServiceAccount with get on Secrets (a GitOps controller) is admitted;
* UPDATE (deploy/admission/admissionpolicy.yaml says why): adding a reference the user cannot
  read is refused; any other spec change to an app naming such a Secret (its image) is refused
  too; a replicas-only change, a metadata-only change and removing the unreadable reference are
  admitted; status writes (the operator's, which may not read Secrets) are never checked.

The policy takes effect a moment after it is created (the API server compiles and caches it):
the module's fixture polls a known-bad dry-run request until it is refused, within a bound.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from tests.conftest import wait_for
from tests.deploy.tools import BASE, kustomize, remove_policy, run

from pythonapp_operator.api.models import MAX_IMAGE_PULL_SECRETS, MAX_SECRETS

pytestmark = pytest.mark.cluster

GROUP, VERSION, PLURAL = "pythonapp.dev", "v1alpha1", "pythonapps"
POLICY = "pythonapp-secret-references"
IMAGE = "ghcr.io/acme/hello:1.0.0@sha256:" + "3b1f4b6d2a7c9e0f" * 4
OTHER_IMAGE = "ghcr.io/acme/hello:1.0.1@sha256:" + "0f9e7c2a6d4b1f3b" * 4
ADMISSION_KINDS = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
# How long the API server may take to start enforcing a policy it has just been given.
ACTIVE_WITHIN_SECONDS = 60


def app(
    namespace: str, name: str, secrets: list[str] | None = None, pull: list[str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "image": IMAGE,
        "replicas": 1,
        "resources": {"limits": {"memory": "128Mi"}},
    }
    if secrets is not None:
        spec["secrets"] = [{"name": s} for s in secrets]
    if pull is not None:
        spec["imagePullSecrets"] = [{"name": s} for s in pull]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PythonApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@contextmanager
def impersonating(kubeconfig: Path, user: str) -> Iterator[client.CustomObjectsApi]:
    """PythonApps as ``user`` sees them: the admin's credentials plus `Impersonate-User` (the
    API server adds system:authenticated, and a ServiceAccount's groups, itself)."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    api.set_default_header("Impersonate-User", user)
    try:
        yield client.CustomObjectsApi(api)
    finally:
        api.close()


def refusal(call: Callable[[], object]) -> str:
    """The API server's message for a request it refused with 403; fails if it was admitted."""
    try:
        call()
    except ApiException as e:
        assert e.status == 403, f"expected 403, got {e.status}: {e.body}"
        return str(json.loads(e.body)["message"])
    pytest.fail("the request was admitted; expected the policy to refuse it")


def by_policy(message: str) -> bool:
    return f"ValidatingAdmissionPolicy '{POLICY}'" in message


def grant(
    rbac: client.RbacAuthorizationV1Api,
    namespace: str,
    name: str,
    rules: list[client.V1PolicyRule],
    subject: client.RbacV1Subject,
) -> None:
    rbac.create_namespaced_role(
        namespace, client.V1Role(metadata=client.V1ObjectMeta(name=name), rules=rules)
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=name),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name=name
            ),
            subjects=[subject],
        ),
    )


def user(name: str) -> client.RbacV1Subject:
    return client.RbacV1Subject(kind="User", name=name, api_group="rbac.authorization.k8s.io")


AUTHOR_RULES = [
    client.V1PolicyRule(
        api_groups=[GROUP],
        resources=[PLURAL],
        verbs=["get", "list", "create", "update", "patch"],
    )
]


def secret_rule(*names: str) -> client.V1PolicyRule:
    return client.V1PolicyRule(
        api_groups=[""], resources=["secrets"], verbs=["get"], resource_names=list(names) or None
    )


def may_get_secret(authz: client.AuthorizationV1Api, who: str, namespace: str, secret: str) -> bool:
    """What RBAC answers now for ``who`` (the policy asks the same authorizer)."""
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=who,
            groups=["system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                group="", resource="secrets", verb="get", namespace=namespace, name=secret
            ),
        )
    )
    return bool(authz.create_subject_access_review(review).status.allowed)


@pytest.fixture(scope="module")
def policy_active(
    kubectl: Path,
    kubeconfig_path: Path,
    rbac_v1: client.RbacAuthorizationV1Api,
    namespace_for_module: str,
) -> Iterator[None]:
    """The CRD, policy and binding from `kubectl kustomize deploy/`, applied as a cluster admin
    would, and in force: a known-bad dry-run request is refused by the policy. Removed after
    the module (the session's cluster is shared: tests elsewhere store objects the policy would
    judge, e.g. junk under a schemaless CRD)."""
    docs = [
        d
        for d in kustomize(BASE)
        if d["kind"] in ADMISSION_KINDS or d["kind"] == "CustomResourceDefinition"
    ]
    assert {d["kind"] for d in docs} == ADMISSION_KINDS | {"CustomResourceDefinition"}, docs
    admin = [kubectl, "--kubeconfig", kubeconfig_path]
    proc: subprocess.CompletedProcess[str] = run(
        [*admin, "apply", "--server-side", "-f", "-"], input=yaml.safe_dump_all(docs)
    )
    assert proc.returncode == 0, f"kubectl apply failed:\n{proc.stderr}"
    crd = "crd/pythonapps.pythonapp.dev"
    proc = run([*admin, "wait", "--for=condition=Established", crd, "--timeout=60s"])
    assert proc.returncode == 0, proc.stderr
    grant(rbac_v1, namespace_for_module, "probe", AUTHOR_RULES, user("probe"))
    probe = app(namespace_for_module, "probe", ["probe-unreadable"])

    def refused() -> bool:
        with impersonating(kubeconfig_path, "probe") as as_probe:
            try:
                as_probe.create_namespaced_custom_object(
                    GROUP, VERSION, namespace_for_module, PLURAL, probe, dry_run="All"
                )
            except ApiException as e:
                return e.status == 403 and by_policy(str(e.body))
        return False

    wait_for(refused, ACTIVE_WITHIN_SECONDS, f"the policy {POLICY} to refuse a known-bad request")
    yield
    remove_policy(kubectl, kubeconfig_path)


@dataclass(frozen=True)
class Env:
    """A fresh namespace in which `alice` may create and edit PythonApps and read no Secret,
    and the admin's clients."""

    namespace: str
    kubeconfig: Path
    rbac: client.RbacAuthorizationV1Api
    authz: client.AuthorizationV1Api
    admin: client.CustomObjectsApi

    def grant_secret(self, who: client.RbacV1Subject, role: str, *names: str) -> None:
        grant(self.rbac, self.namespace, role, [secret_rule(*names)], who)

    def wait_rbac(self, who: str, secret: str) -> None:
        """RBAC changes reach the authorizer through an informer: wait until they have."""
        wait_for(
            lambda: may_get_secret(self.authz, who, self.namespace, secret),
            30,
            f"RBAC to let {who} get secret/{secret}",
        )

    def create(self, as_: client.CustomObjectsApi, body: dict[str, Any]) -> object:
        return as_.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def patch(self, as_: client.CustomObjectsApi, name: str, body: dict[str, Any]) -> object:
        """A JSON merge patch (a None value deletes the field)."""
        return as_.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, body
        )

    def stored(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = self.admin.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return got

    def exists(self, name: str) -> bool:
        try:
            self.stored(name)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True


@pytest.fixture
def env(
    policy_active: None,
    namespace: str,
    kubeconfig_path: Path,
    rbac_v1: client.RbacAuthorizationV1Api,
    custom_objects: client.CustomObjectsApi,
) -> Env:
    grant(rbac_v1, namespace, "pythonapp-author", AUTHOR_RULES, user("alice"))
    authz = client.AuthorizationV1Api(rbac_v1.api_client)
    return Env(namespace, kubeconfig_path, rbac_v1, authz, custom_objects)


def test_author_who_cannot_get_the_secret_is_refused_with_the_rule(env: Env) -> None:
    with impersonating(env.kubeconfig, "alice") as alice:
        message = refusal(lambda: env.create(alice, app(env.namespace, "web", ["db"])))
        # the control: the same user, the same app without the Secret, is admitted
        env.create(alice, app(env.namespace, "plain"))
    assert by_policy(message), message
    for said in (
        f"{POLICY}: a PythonApp may reference only Secrets its author may read",
        f"alice cannot get Secret db in namespace {env.namespace} (named by PythonApp web)",
        f"kubectl auth can-i get secret/db -n {env.namespace}",
    ):
        assert said in message, message
    assert not env.exists("web")
    assert env.exists("plain")


def test_get_on_that_one_secret_admits_it_and_no_other(env: Env) -> None:
    env.grant_secret(user("alice"), "read-db", "db")
    env.wait_rbac("alice", "db")
    with impersonating(env.kubeconfig, "alice") as alice:
        env.create(alice, app(env.namespace, "web", ["db"]))
        message = refusal(lambda: env.create(alice, app(env.namespace, "api", ["db", "api-key"])))
    assert env.stored("web")["spec"]["secrets"] == [{"name": "db"}]
    assert by_policy(message) and "cannot get Secret api-key" in message, message
    assert "cannot get Secret db " not in message, message  # the one readable is not named
    assert not env.exists("api")


def test_gitops_service_account_with_get_is_admitted(env: Env) -> None:
    account = f"system:serviceaccount:{env.namespace}:gitops"
    subject = client.RbacV1Subject(kind="ServiceAccount", name="gitops", namespace=env.namespace)
    grant(env.rbac, env.namespace, "gitops", [*AUTHOR_RULES, secret_rule()], subject)
    wait_for(
        lambda: may_get_secret(env.authz, account, env.namespace, "db"),
        30,
        "RBAC to let the gitops ServiceAccount get Secrets",
    )
    with impersonating(env.kubeconfig, account) as gitops:
        env.create(gitops, app(env.namespace, "web", ["db", "api-key"]))
        env.patch(gitops, "web", {"spec": {"image": OTHER_IMAGE}})
    assert env.stored("web")["spec"]["image"] == OTHER_IMAGE


def test_update_adding_a_reference_the_author_cannot_read_is_refused(env: Env) -> None:
    env.grant_secret(user("alice"), "read-db", "db")
    env.wait_rbac("alice", "db")
    with impersonating(env.kubeconfig, "alice") as alice:
        env.create(alice, app(env.namespace, "web", ["db"]))
        added = {"spec": {"secrets": [{"name": "db"}, {"name": "api-key"}]}}
        message = refusal(lambda: env.patch(alice, "web", added))
    assert by_policy(message) and "cannot get Secret api-key" in message, message
    assert env.stored("web")["spec"]["secrets"] == [{"name": "db"}]


def test_editing_an_app_that_names_an_unreadable_secret(env: Env) -> None:
    """Someone else (the admin) created `web` with Secret `db`; alice may edit PythonApps but
    not read `db`. Changing what runs with `db` (the image, env, limits, command) is refused, as
    adding the reference would be; scaling (replicas, the autoscaling range, the disruption
    budget), labelling and dropping the reference are admitted."""
    env.create(env.admin, app(env.namespace, "web", ["db"]))
    stored_before = env.stored("web")["spec"]
    with impersonating(env.kubeconfig, "alice") as alice:
        message = refusal(lambda: env.patch(alice, "web", {"spec": {"image": OTHER_IMAGE}}))
        assert by_policy(message) and "(named by PythonApp web)" in message, message
        # nested fields compare deeply: a new env entry, a changed limit, a new command
        for change in (
            {"env": [{"name": "DEBUG", "value": "1"}]},
            {"resources": {"limits": {"memory": "256Mi"}}},
            {"command": ["sh", "-c", "cat /run/secrets/db/*"]},
        ):
            patch = {"spec": change}
            message = refusal(lambda: env.patch(alice, "web", patch))  # noqa: B023 (called at once)
            assert by_policy(message), (change, message)
        assert env.stored("web")["spec"] == stored_before
        env.patch(alice, "web", {"spec": {"replicas": 3}})
        # how many pods run, not what runs in them: the autoscaling range, the budget
        env.patch(alice, "web", {"spec": {"autoscaling": {"minReplicas": 2, "maxReplicas": 5}}})
        env.patch(alice, "web", {"spec": {"disruption": {"maxUnavailable": "50%"}}})
        env.patch(alice, "web", {"metadata": {"labels": {"team": "a"}}})
        env.patch(alice, "web", {"spec": {"secrets": None}})
        # with no Secret named any more, any change is hers to make
        env.patch(alice, "web", {"spec": {"image": OTHER_IMAGE}})
    stored = env.stored("web")
    assert stored["spec"]["replicas"] == 3 and stored["metadata"]["labels"] == {"team": "a"}
    assert "secrets" not in stored["spec"] and stored["spec"]["image"] == OTHER_IMAGE


def test_an_app_naming_as_many_secrets_as_allowed_is_checked_in_full(env: Env) -> None:
    """Sixteen Secrets, every one readable but the last: one CEL expression may make only two
    authorization checks (their cost), so a policy checking them in one expression refused
    any app naming three (found by the fuzz tests). Each is checked, the last one refused."""
    names = [f"s{i}" for i in range(MAX_SECRETS)]
    env.grant_secret(user("alice"), "read-most", *names[:-1])
    env.wait_rbac("alice", names[-2])
    with impersonating(env.kubeconfig, "alice") as alice:
        env.create(alice, app(env.namespace, "most", names[:-1]))
        message = refusal(lambda: env.create(alice, app(env.namespace, "all", names)))
    assert by_policy(message) and f"cannot get Secret {names[-1]} " in message, message
    assert env.exists("most") and not env.exists("all")


def test_an_image_pull_secret_the_author_cannot_get_is_refused(env: Env) -> None:
    """An image pull Secret hands its registry credentials to the kubelet for the app's pods:
    naming someone else's would pull from their registry account. Checked like a mounted one."""
    env.grant_secret(user("alice"), "read-regcred", "regcred")
    env.wait_rbac("alice", "regcred")
    with impersonating(env.kubeconfig, "alice") as alice:
        env.create(alice, app(env.namespace, "web", pull=["regcred"]))
        message = refusal(
            lambda: env.create(alice, app(env.namespace, "api", pull=["regcred", "ops-registry"]))
        )
        added = {"spec": {"imagePullSecrets": [{"name": "regcred"}, {"name": "ops-registry"}]}}
        refused_update = refusal(lambda: env.patch(alice, "web", added))
    assert by_policy(message) and "cannot get Secret ops-registry " in message, message
    assert "cannot get Secret regcred " not in message, message
    assert by_policy(refused_update) and "ops-registry" in refused_update, refused_update
    assert env.stored("web")["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert not env.exists("api")


def test_every_secret_and_pull_secret_allowed_is_checked_in_full(env: Env) -> None:
    """Sixteen Secrets, four image pull Secrets and a TLS certificate, all readable but the
    last pull Secret: twenty-one authorization checks in one request, within the API server's
    budget, the last pull Secret refused by name. A name in both lists is one check."""
    names = [f"s{i}" for i in range(MAX_SECRETS)]
    pulls = [f"p{i}" for i in range(MAX_IMAGE_PULL_SECRETS)]
    env.grant_secret(user("alice"), "read-most", *names, *pulls[:-1], "site-tls")
    env.wait_rbac("alice", pulls[-2])
    most = app(env.namespace, "most", names, [*pulls[:-1], names[0]])
    every = app(env.namespace, "all", names, pulls)
    for doc in (most, every):
        doc["spec"]["expose"] = {"host": "site.example.com", "tls": {"secretName": "site-tls"}}
    with impersonating(env.kubeconfig, "alice") as alice:
        env.create(alice, most)
        message = refusal(lambda: env.create(alice, every))
    assert by_policy(message) and f"cannot get Secret {pulls[-1]} " in message, message
    assert env.exists("most") and not env.exists("all")


def test_the_tls_certificate_of_expose_is_a_secret_reference_too(env: Env) -> None:
    """spec.expose.tls.secretName hands a Secret (a certificate's private key) to the ingress
    controller for the app's host: checked like spec.secrets, as a seventeenth check beside
    the sixteen Secrets an app may name (within the policy's cost budget)."""
    names = [f"s{i}" for i in range(MAX_SECRETS)]
    env.grant_secret(user("alice"), "read-mounted", *names)
    env.wait_rbac("alice", names[-1])
    exposed = app(env.namespace, "site", names)
    exposed["spec"]["expose"] = {"host": "site.example.com", "tls": {"secretName": "site-tls"}}
    plain = app(env.namespace, "plain", names)
    plain["spec"]["expose"] = {"host": "plain.example.com"}
    with impersonating(env.kubeconfig, "alice") as alice:
        message = refusal(lambda: env.create(alice, exposed))
        env.create(alice, plain)  # the control: the same Secrets, no certificate
    assert by_policy(message) and "cannot get Secret site-tls " in message, message
    assert not env.exists("site") and env.exists("plain")
    env.grant_secret(user("alice"), "read-tls", "site-tls")
    env.wait_rbac("alice", "site-tls")
    with impersonating(env.kubeconfig, "alice") as alice:
        env.create(alice, exposed)
    assert env.stored("site")["spec"]["expose"]["tls"] == {"secretName": "site-tls"}


def test_status_writes_are_not_checked(env: Env) -> None:
    """The operator may not read Secrets and writes only the status subresource: the policy
    does not match it, so an app naming a Secret nobody but the admin can read still gets its
    status."""
    env.create(env.admin, app(env.namespace, "web", ["db"]))
    rules = [
        client.V1PolicyRule(api_groups=[GROUP], resources=[PLURAL], verbs=["get"]),
        client.V1PolicyRule(api_groups=[GROUP], resources=[f"{PLURAL}/status"], verbs=["patch"]),
    ]
    grant(env.rbac, env.namespace, "status-writer", rules, user("status-writer"))
    assert not may_get_secret(env.authz, "status-writer", env.namespace, "db")
    status = {"status": {"observedGeneration": 1}}

    def patched() -> bool:
        with impersonating(env.kubeconfig, "status-writer") as writer:
            try:
                writer.patch_namespaced_custom_object_status(
                    GROUP, VERSION, env.namespace, PLURAL, "web", status
                )
            except ApiException as e:
                assert e.status == 403 and not by_policy(str(e.body)), e.body
                return False  # RBAC not there yet
        return True

    wait_for(patched, 30, "RBAC to let status-writer patch the status")
    assert env.stored("web")["status"]["observedGeneration"] == 1
