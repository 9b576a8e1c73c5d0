"""docs/reference.md: generated from the models (through the CRD schema), never edited."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pythonapp_operator.api.crd import crd
from pythonapp_operator.docs import reference

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference.md"


def test_reference_is_byte_identical_to_the_generator() -> None:
    assert REFERENCE.read_text() == reference(), (
        "docs/reference.md is out of date: run `make docs` (never edit it by hand)"
    )


def _fields(node: dict[str, Any], path: str) -> list[tuple[str, str]]:
    """(section, field name) for every property of every object in the schema."""
    out: list[tuple[str, str]] = []
    if "properties" in node:
        for name, child in node["properties"].items():
            out.append((path, name))
            out += _fields(child, f"{path}.{name}")
    if "items" in node:
        out += _fields(node["items"], f"{path}[]")
    return out


def test_every_field_is_in_its_section_with_its_description() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    sections = dict(
        re.findall(r"^## `([^`]+)`\n(.*?)(?=^## |\Z)", reference(), re.MULTILINE | re.DOTALL)
    )
    for top in ("spec", "status"):
        for section, name in _fields(schema["properties"][top], top):
            assert section in sections, f"no section for {section}"
            assert re.search(rf"^\| `{re.escape(name)}`", sections[section], re.MULTILINE), (
                f"{section}.{name} is missing from docs/reference.md"
            )
    assert "limits.memory is required" in sections["spec.resources"]


def test_angle_brackets_are_escaped_outside_code() -> None:
    """`/run/secrets/<name>` would vanish as an unknown HTML tag on GitHub."""
    for line in reference().splitlines():
        outside_code = "".join(line.split("`")[::2])
        if line.startswith("<!--") or line.endswith("-->"):
            continue
        assert not re.search(r"<[a-z]", outside_code), line


def test_the_platform_policy_is_in_the_reference() -> None:
    page = reference()
    assert "# PythonAppPolicy field reference" in page
    for section in (
        "PythonAppPolicy.spec",
        "PythonAppPolicy.spec.resources",
        "PythonAppPolicy.spec.expose",
    ):
        assert f"## `{section}`" in page, section
    assert "| `allowedRegistries` |" in page and "| `allowedNamespaces` |" in page
