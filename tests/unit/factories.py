"""A valid PythonApp to vary one field at a time."""

from __future__ import annotations

import copy
from typing import Any

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"ghcr.io/acme/shop:1.0.0@{DIGEST}"


def make_doc(**spec: Any) -> dict[str, Any]:
    """A valid PythonApp document; keyword arguments override spec fields (None deletes)."""
    doc: dict[str, Any] = {
        "apiVersion": "pythonapp.dev/v1alpha1",
        "kind": "PythonApp",
        "metadata": {"name": "shop", "namespace": "team-a"},
        "spec": {"image": IMAGE, "resources": {"limits": {"memory": "512Mi"}}},
    }
    for key, value in spec.items():
        if value is None:
            doc["spec"].pop(key, None)
        else:
            doc["spec"][key] = copy.deepcopy(value)
    return doc
