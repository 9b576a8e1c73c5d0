"""PythonApps at the edges of what the API allows: each works end to end (validate, render,
the API server's dry run of the app and of every child, Pod Security ``restricted`` without a
warning) or is refused by the models and by the API server with a message that names the
field: never a traceback, never a 5xx.

Edges: a name of 63 characters (it names every child, the Service included, whose own limit
is 63, and fills the ``app.kubernetes.io/*`` label values to their limit too), 16 Secrets, 64
env vars, Unicode in values and (refused) in names, and a spec near the API server's object
size limit (the models and the CRD keep env values, command and args within a budget far
below it: without one, the API server answered a large spec's create with a 500,
"etcdserver: request is too large", while its dry run passed).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.integration.server import Server
from tests.integration.test_fuzz_api_server import (  # noqa: F401 (fixtures)
    doc_of,
    dry_run_children,
    restricted_namespace,
    server,
)
from tests.unit.factories import IMAGE

from pythonapp_operator.api.models import MSG_TEXT_BUDGET, TEXT_BUDGET
from pythonapp_operator.api.validation import validate_document

pytestmark = pytest.mark.cluster

NAME_63 = "a" + "b" * 61 + "c"
UNICODE = "ünïcødé ✓ 🐍 日本語 \u200b\u00a0 tab\tnew\nline \"quoted\" 'single' \\ $HOME ${X}"


def spec(**fields: Any) -> dict[str, Any]:
    return {"image": IMAGE, "resources": {"limits": {"memory": "512Mi"}}, **fields}


def sixteen_secrets_sixty_four_env() -> dict[str, Any]:
    return spec(
        env=[{"name": f"SETTING_{i}", "value": f"{UNICODE} {i}"} for i in range(64)],
        secrets=[
            {
                "name": f"secret-{i}.example",
                "env": [{"name": f"SECRET_{i}_{j}", "key": f"key.{j}"} for j in range(16)],
            }
            for i in range(16)
        ],
    )


def at_text_budget(extra: int = 0) -> dict[str, Any]:
    """Env values, command and args of exactly the budget (plus ``extra`` bytes), in UTF-8,
    Unicode included: the largest spec the API accepts is far below the object size limit."""
    snake = "🐍" * 1024  # 4 KiB of UTF-8 in 1,024 characters
    env = [{"name": f"BIG_{i}", "value": "x" * 32768} for i in range(3)]
    args = [snake] * 7 + ["y" * (TEXT_BUDGET - 3 * 32768 - 7 * 4096 - 100 + extra)]
    return spec(env=env, command=["z" * 100], args=args)


WORKS = {
    "name of 63 characters": (NAME_63, spec()),
    "worker named with 63 characters": (NAME_63, spec(profile="worker")),
    "16 secrets with 16 env each and 64 env vars": ("shop", sixteen_secrets_sixty_four_env()),
    "unicode in values, command and args": (
        "shop",
        spec(env=[{"name": "GREETING", "value": UNICODE}], command=[UNICODE], args=[UNICODE]),
    ),
    "env, command and args at the size budget": ("shop", at_text_budget()),
}


@pytest.mark.parametrize(("name", "the_spec"), WORKS.values(), ids=WORKS.keys())
def test_edge_works_end_to_end(
    server: Server,  # noqa: F811
    restricted_namespace: str,  # noqa: F811
    namespace: str,
    name: str,
    the_spec: dict[str, Any],
) -> None:
    doc = doc_of(the_spec, restricted_namespace, name)
    app, problems = validate_document(doc)
    assert app is not None, problems
    answer = server.create_app(doc)
    assert answer.ok, (answer.status, answer.message[:500])
    # and for real, in a namespace of its own (a dry run stops before storage, where the
    # object size limit is checked)
    created = server.create_app(doc_of(the_spec, namespace, name), dry_run=False)
    assert created.ok, (created.status, created.message[:500])
    doc["metadata"]["uid"] = created.body["metadata"]["uid"]
    children = dry_run_children(server, doc)
    for kind, result in children.items():
        assert result.ok, f"{kind}: {result.status} {result.message[:500]}"
        assert result.warnings == [], f"{kind}: {result.warnings}"
        assert result.body["metadata"]["name"] == name
        labels = result.body["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == name


REFUSED = {
    "name of 64 characters": (NAME_63 + "d", spec(), "metadata.name"),
    "unicode env name": ("shop", spec(env=[{"name": "GRÜSSE", "value": "x"}]), "spec.env[0].name"),
    "unicode secret name": (
        "shop",
        spec(secrets=[{"name": "geheimnis-ü"}]),
        "spec.secrets[0].name",
    ),
    "65 env vars": (
        "shop",
        spec(env=[{"name": f"V{i}", "value": "x"} for i in range(65)]),
        "spec.env",
    ),
    "17 secrets": ("shop", spec(secrets=[{"name": f"s{i}"} for i in range(17)]), "spec.secrets"),
    "an env value over 32768 characters": (
        "shop",
        spec(env=[{"name": "BIG", "value": "x" * 32769}]),
        "spec.env[0].value",
    ),
    "one byte over the size budget": ("shop", at_text_budget(extra=1), "spec"),
    "a spec over the API server's object limit": (
        "shop",
        spec(env=[{"name": f"BIG_{i}", "value": "y" * 32768} for i in range(64)]),
        "spec",
    ),
}


@pytest.mark.parametrize(("name", "the_spec", "field"), REFUSED.values(), ids=REFUSED.keys())
def test_edge_is_refused_naming_the_field(
    server: Server,  # noqa: F811
    namespace_for_module: str,
    name: str,
    the_spec: dict[str, Any],
    field: str,
) -> None:
    doc = doc_of(the_spec, namespace_for_module, name)
    app, problems = validate_document(doc)
    assert app is None, f"the models accept it ({len(json.dumps(doc))} bytes)"
    assert any(p.path.startswith(field) for p in problems), [p.path for p in problems]
    for p in problems:
        assert len(p.message) < 500 and "Traceback" not in p.message
    for dry_run in (True, False):
        answer = server.create_app(doc, dry_run=dry_run)
        assert not answer.ok, f"the API server accepts it (dry_run={dry_run})"
        assert answer.status in (400, 413, 422), (answer.status, answer.message[:500])
        assert field.split("[", maxsplit=1)[0] in answer.message, answer.message[:500]
        if field == "spec":  # the size budget: the models and the API server say the same
            assert [p.message for p in problems] == [MSG_TEXT_BUDGET]
            assert MSG_TEXT_BUDGET in answer.message, answer.message[:500]
