"""Generated specs on the real API server: the CRD (schema + CEL) and the models agree on every
accept and refuse, and what they accept renders into children that pass the API server's own
checks, Pod Security ``restricted`` included, without a single warning.

test_crd_agreement.py does this on hand-picked cases; here hypothesis draws them
(tests/unit/strategies.py): valid specs, near-misses (one thing broken in a valid spec),
wild values anywhere, and names around the 63-character limit. Every call is a server-side
dry run (``dryRun=All``): nothing is stored, so a few hundred examples take seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from kubernetes import client
from tests.integration.server import Answer, Server
from tests.integration.test_crd_agreement import install_crd
from tests.unit.factories import make_doc
from tests.unit.strategies import (
    MUTATIONS,
    Mutation,
    NearMiss,
    near_misses,
    schedules,
    valid_cron_specs,
    valid_specs,
    wild_specs,
)

from pythonapp_operator.api.validation import Problem, validate_document
from pythonapp_operator.controller.compare import with_hash
from pythonapp_operator.render import render

pytestmark = pytest.mark.cluster

RESTRICTED = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
}


@pytest.fixture(scope="module")
def server(kubectl: Path, kubeconfig_path: Path, api_client: client.ApiClient) -> Server:
    install_crd(kubectl, kubeconfig_path)
    return Server(api_client)


@pytest.fixture(scope="module")
def restricted_namespace(core_v1: client.CoreV1Api) -> Iterator[str]:
    """A namespace whose Pod Security admission enforces, warns and audits ``restricted``."""
    name = f"t-fuzz-restricted-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=name, labels={"pythonapp.dev/test": "true", **RESTRICTED}
            )
        )
    )
    yield name
    core_v1.delete_namespace(name)


def doc_of(spec: Any, namespace: str, name: str = "shop") -> dict[str, Any]:
    doc = make_doc()
    doc["metadata"] = {"name": name, "namespace": namespace}
    doc["spec"] = spec
    return doc


def _lines(problems: list[Problem]) -> list[str]:
    return [f"{p.path}: {p.message}" for p in problems]


def agree(server: Server, doc: dict[str, Any]) -> tuple[list[Problem], Answer]:
    """Both verdicts on ``doc``; fails the test when they differ, or the server errs (5xx)."""
    app, problems = validate_document(doc)
    answer = server.create_app(doc)
    assert answer.status < 500, f"the API server failed ({answer.status}): {answer.message}"
    if app is not None:
        assert answer.ok, (
            f"the models accept, the API server refuses ({answer.status}): {answer.message}\n"
            f"spec: {doc['spec']!r}"
        )
    else:
        assert not answer.ok, (
            f"the models refuse, the API server accepts: {_lines(problems)}\nspec: {doc['spec']!r}"
        )
        assert answer.status in (400, 422), answer
        # the API server names a field the models name (it may stop at the first kind of
        # error: a strict-decoding error about an unknown field says nothing else)
        fields = {".".join(p.path.split("[", 1)[0].split(".")[:2]) for p in problems}
        assert any(f in answer.message for f in fields), (
            f"the API server names none of {sorted(fields)}: {answer.message}"
        )
    return problems, answer


@given(valid_specs())
def test_api_server_accepts_every_generated_valid_spec(
    server: Server, namespace_for_module: str, spec: dict[str, Any]
) -> None:
    agree(server, doc_of(spec, namespace_for_module))


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.__name__.strip("_"))
def test_api_server_refuses_every_near_miss_naming_its_field(
    server: Server, namespace_for_module: str, mutation: Mutation
) -> None:
    @settings(max_examples=max(10, settings.default.max_examples // 5))
    @given(near_misses([mutation]))
    def check(miss: NearMiss) -> None:
        event(miss.what)
        _, answer = agree(server, doc_of(miss.spec, namespace_for_module))
        assert f"spec.{miss.field}" in answer.message, (
            f"{miss.what}: the API server does not name spec.{miss.field}: {answer.message}"
        )

    check()


@given(wild_specs())
def test_models_and_api_server_agree_on_wild_values(
    server: Server, namespace_for_module: str, spec: dict[str, Any]
) -> None:
    problems, _ = agree(server, doc_of(spec, namespace_for_module))
    event("refused" if problems else "accepted")


names = st.one_of(
    st.from_regex(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True),
    st.from_regex(r"[a-z][-a-z0-9]{62}[a-z0-9]", fullmatch=True),  # 64: one too long
    st.from_regex(r"[a-z0-9.A-Z_-]{1,70}", fullmatch=True),
    st.integers(54, 70).map(lambda n: "a" * n),
)


@given(names)
def test_models_and_api_server_agree_on_names(
    server: Server, namespace_for_module: str, name: str
) -> None:
    doc = doc_of(make_doc()["spec"], namespace_for_module, name)
    app, problems = validate_document(doc)
    answer = server.create_app(doc)
    assert answer.status < 500, answer
    assert answer.ok == (app is not None), (name, _lines(problems), answer.message)
    if problems:
        assert problems[0].path == "metadata.name"
        assert "metadata.name" in answer.message, answer.message


def dry_run_children(server: Server, doc: dict[str, Any]) -> dict[str, Answer]:
    """Render an accepted app and dry-run every child as the operator applies it."""
    app, problems = validate_document(doc)
    assert app is not None, _lines(problems)
    return {child["kind"]: server.apply(with_hash(child)) for child in render(app)}


@given(valid_specs())
def test_every_accepted_spec_renders_children_that_pass_restricted_without_warnings(
    server: Server, restricted_namespace: str, spec: dict[str, Any]
) -> None:
    doc = doc_of(spec, restricted_namespace)
    doc["metadata"]["uid"] = str(uuid.uuid4())  # the children get their owner reference
    for kind, answer in dry_run_children(server, doc).items():
        assert answer.ok, f"{kind} refused ({answer.status}): {answer.message}\nspec: {spec!r}"
        assert answer.warnings == [], f"{kind}: warnings {answer.warnings}\nspec: {spec!r}"


@given(valid_cron_specs())
def test_every_accepted_scheduled_app_renders_children_that_pass_restricted_without_warnings(
    server: Server, restricted_namespace: str, spec: dict[str, Any]
) -> None:
    doc = doc_of(spec, restricted_namespace)
    agree(server, doc)
    doc["metadata"]["uid"] = str(uuid.uuid4())
    for kind, answer in dry_run_children(server, doc).items():
        assert answer.ok, f"{kind} refused ({answer.status}): {answer.message}\nspec: {spec!r}"
        assert answer.warnings == [], f"{kind}: warnings {answer.warnings}\nspec: {spec!r}"


@given(schedules())
def test_a_schedule_the_models_accept_the_cronjob_api_accepts_too(
    server: Server, namespace_for_module: str, schedule: str
) -> None:
    """At least as strict as the API server: the models and the CRD agree on any schedule,
    and one they accept is a schedule the API server's CronJob validation accepts (its parser
    is robfig/cron's; a schedule the PythonApp took but the CronJob refused would stall the
    app only when the operator applies it)."""
    spec = {**make_doc()["spec"], "profile": "cron", "cron": {"schedule": schedule}}
    doc = doc_of(spec, namespace_for_module)
    problems, _ = agree(server, doc)
    event("refused" if problems else "accepted")
    if problems:
        return
    doc["metadata"]["uid"] = str(uuid.uuid4())
    answer = dry_run_children(server, doc)["CronJob"]
    assert answer.ok, f"the CronJob with {schedule!r} is refused: {answer.message}"
