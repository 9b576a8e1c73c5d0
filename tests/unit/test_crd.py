"""The generated CRD: in step with the file in the repo, structural, and carrying the rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pythonapp_operator.api import image, models
from pythonapp_operator.api.crd import crd
from pythonapp_operator.yamlio import dump_all

ROOT = Path(__file__).resolve().parents[2]


def test_crd_file_is_byte_identical_to_pythonapp_crd() -> None:
    generated = dump_all([crd()])
    committed = (ROOT / "crds" / "pythonapps.yaml").read_text()
    assert committed == generated, (
        "crds/pythonapps.yaml is out of date: run `make crd` (never edit it by hand)"
    )


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, value in node.get("properties", {}).items():
            out += _walk(value, f"{path}.{key}")
        if "items" in node:
            out += _walk(node["items"], f"{path}[]")
    return out


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_schema_is_structural() -> None:
    forbidden = {"$ref", "anyOf", "allOf", "oneOf", "additionalProperties", "title", "default"}
    for path, node in _walk(_schema()):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        assert not forbidden & node.keys(), f"{path} has {forbidden & node.keys()}"


def test_every_field_has_explain_text() -> None:
    """`kubectl explain pythonapps.FIELD` prints the schema's description: every property of
    the whole schema (root, spec, status, nested objects and object list items) has one of at
    least two words. Two exceptions, both shown by kubectl explain from elsewhere:
    ``metadata`` (the API server forbids anything but name/generateName rules on it, a
    description included; explain shows ObjectMeta's built-in text) and scalar list items
    (``command[]``), which are not fields: explain shows the list's description."""
    missing = []
    for path, node in _walk(_schema(), "pythonapps"):
        if path == "pythonapps.metadata":
            assert node == {"type": "object"}, "metadata: the API server refuses anything more"
            continue
        if path.endswith("[]") and node.get("type") != "object":
            continue
        if len(str(node.get("description", "")).split()) < 2:
            missing.append(path)
    assert not missing, f"no kubectl explain text (a description in models.py): {missing}"


def test_the_explain_walk_sees_every_field() -> None:
    """The walk above reaches status and nested list items, so it cannot pass vacuously."""
    paths = {path for path, _ in _walk(_schema(), "pythonapps")}
    for expected in (
        "pythonapps.metadata",
        "pythonapps.spec.secrets[].env[].key",
        "pythonapps.spec.probes.startup.failureThreshold",
        "pythonapps.status.conditions[].lastTransitionTime",
    ):
        assert expected in paths


def test_strings_and_lists_are_bounded_for_cel_cost() -> None:
    for path, node in _walk(_schema()["properties"]["spec"], "spec"):
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, path
        if node.get("type") == "array":
            assert "maxItems" in node, path


def _rules(node: dict[str, Any]) -> list[dict[str, str]]:
    rules: list[dict[str, str]] = node.get("x-kubernetes-validations", [])
    return rules


def test_image_rules_carry_the_same_messages_as_the_python_policy() -> None:
    messages = {
        r["message"] for r in _rules(_schema()["properties"]["spec"]["properties"]["image"])
    }
    assert messages == {
        image.MSG_MALFORMED,
        image.MSG_NO_DIGEST,
        image.MSG_BAD_DIGEST,
        image.MSG_LATEST,
    }


def test_cross_field_rules_are_in_the_spec_schema() -> None:
    spec_rules = {r["message"] for r in _rules(_schema()["properties"]["spec"])}
    assert {rule.message for rule in models.SPEC_RULES} <= spec_rules
    resources = _schema()["properties"]["spec"]["properties"]["resources"]
    assert any("below requests.memory" in r["message"] for r in _rules(resources))


def test_names_columns_and_subresource() -> None:
    c = crd()
    assert c["metadata"]["name"] == "pythonapps.pythonapp.dev"
    assert c["spec"]["names"]["shortNames"] == ["pyapp"]
    assert c["spec"]["scope"] == "Namespaced"
    version = c["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {
        "status": {},
        # kubectl scale pyapp NAME --replicas N; the selector is written by the status code
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    status = _schema()["properties"]["status"]["properties"]
    assert status["selector"]["type"] == "string" and status["replicas"]["type"] == "integer"
    columns = [col["name"] for col in version["additionalPrinterColumns"] if "priority" not in col]
    assert columns == ["Image", "Ready", "Status", "Age"]
    required = _schema()["properties"]["spec"]["required"]
    assert set(required) == {"image", "resources"}


def test_list_map_keys_make_names_unique_server_side() -> None:
    props = _schema()["properties"]["spec"]["properties"]
    for field in ("env", "secrets"):
        assert props[field]["x-kubernetes-list-type"] == "map"
        assert props[field]["x-kubernetes-list-map-keys"] == ["name"]


def test_wide_output_adds_the_ready_message() -> None:
    """`kubectl get pyapp -o wide` shows why an app is (not) Ready; the default view stays
    narrow (priority 1 columns appear only with -o wide)."""
    columns = crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    message = next(c for c in columns if c["name"] == "Message")
    assert message == {
        "name": "Message",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].message',
        "priority": 1,
    }
    assert [c["name"] for c in columns if not c.get("priority")] == [
        "Image",
        "Ready",
        "Status",
        "Age",
    ]
    last_run = next(c for c in columns if c["name"] == "Last Run")
    assert (last_run["jsonPath"], last_run["priority"]) == (".status.cron.lastRun.result", 1)
