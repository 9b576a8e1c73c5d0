"""The examples are applied together (`make demo` applies every file in examples/ to one
namespace): two PythonApps with one name would overwrite each other, and the first would never
be seen (found when the migrations example reused `shop`: the demo waited for a Secret the
other example does not name, and failed)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_every_example_pythonapp_has_a_name_of_its_own() -> None:
    names: Counter[tuple[str, str]] = Counter()
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "PythonApp":
                meta = doc["metadata"]
                names[meta.get("namespace", "default"), meta["name"]] += 1
    assert len(names) >= 5
    assert [key for key, count in names.items() if count > 1] == []
