"""Generated specs through the models: every valid one accepted and rendered, every near-miss
refused naming its field, and nothing at all (wild values anywhere) raising past the models.

The same strategies go to the real API server in tests/integration/test_fuzz_api_server.py,
which checks that the CRD agrees with the models on each of them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import event, given, settings
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

from pythonapp_operator.api.validation import validate_document
from pythonapp_operator.render import render


def doc_of(spec: dict[str, Any]) -> dict[str, Any]:
    doc = make_doc()
    doc["spec"] = spec
    return doc


@given(valid_specs())
def test_every_generated_valid_spec_is_accepted_and_renders(spec: dict[str, Any]) -> None:
    app, problems = validate_document(doc_of(spec))
    assert app is not None, [f"{p.path}: {p.message}" for p in problems]
    children = render(app)
    assert children[0]["kind"] == "Deployment"
    json.dumps(children)  # plain JSON all the way down: what the API server receives


@given(valid_cron_specs())
def test_every_generated_scheduled_app_is_accepted_and_renders_a_cronjob(
    spec: dict[str, Any],
) -> None:
    app, problems = validate_document(doc_of(spec))
    assert app is not None, [f"{p.path}: {p.message}" for p in problems]
    kinds = [child["kind"] for child in render(app)]
    assert kinds[0] == "CronJob"
    assert not {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} & set(
        kinds
    )


@given(schedules())
def test_any_schedule_is_accepted_or_refused_at_spec_cron_schedule(schedule: str) -> None:
    app, problems = validate_document(doc_of({**make_doc()["spec"], **_cron(schedule)}))
    event("accepted" if app is not None else "refused")
    assert all(p.path == "spec.cron.schedule" for p in problems), problems


def _cron(schedule: str) -> dict[str, Any]:
    return {"profile": "cron", "cron": {"schedule": schedule}}


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.__name__.strip("_"))
def test_every_near_miss_is_refused_naming_its_field(mutation: Mutation) -> None:
    @settings(max_examples=max(10, settings.default.max_examples // 4))
    @given(near_misses([mutation]))
    def check(miss: NearMiss) -> None:
        event(miss.what)
        app, problems = validate_document(doc_of(miss.spec))
        assert app is None, f"the models accepted a near-miss: {miss.what}: {miss.spec}"
        paths = [p.path for p in problems]
        assert any(p.startswith(f"spec.{miss.field}") for p in paths), (
            f"{miss.what}: no problem names spec.{miss.field}: {paths}"
        )
        for p in problems:
            assert p.message and "Traceback" not in p.message

    check()


@given(wild_specs())
def test_wild_values_anywhere_give_problems_or_an_app_never_an_exception(
    spec: dict[str, Any],
) -> None:
    app, problems = validate_document(doc_of(spec))
    assert (app is None) == bool(problems)
    if app is not None:
        render(app)
    for p in problems:
        assert p.path.startswith("spec") and p.message
