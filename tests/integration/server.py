"""Plain calls to the real API server for the fuzz tests: creates and applies, dry-run or not,
with the answer's status, body and Warning headers.

kubectl costs a process per call; these go over the session's connection pool (the official
client's transport, as :class:`~pythonapp_operator.controller.client.RestApi` uses it), so a
property test can afford a few hundred of them. Warnings are read from the response's
``Warning`` headers, where the API server puts Pod Security ``warn`` verdicts, deprecations
and unknown-field notes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pythonapp_operator import GROUP, PLURAL, VERSION
from pythonapp_operator.controller.client import FIELD_MANAGER, apply_body, prepare
from pythonapp_operator.controller.kinds import KINDS_BY_KIND

Obj = dict[str, Any]
_WARNING = re.compile(r'^\d{3} \S+ "(?P<text>(?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Answer:
    """What the API server said to one request."""

    status: int
    body: Obj
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status < 300

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if not self.ok else ""


def as_kubectl_sends(value: Any) -> Any:
    """``value`` as kubectl (and Argo CD and Flux) put it on the wire: YAML becomes JSON through
    sigs.k8s.io/yaml, i.e. Go's encoding/json, which writes a whole float64 below 1e21 with no
    decimal point (64.0 -> 64) and larger ones with an exponent."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: as_kubectl_sends(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_kubectl_sends(v) for v in value]
    return value


def _warnings(values: list[str]) -> list[str]:
    out = []
    for value in values:
        match = _WARNING.match(value)
        out.append(match.group("text").replace('\\"', '"') if match else value)
    return out


class Server:
    """Requests over an official ``ApiClient``'s pool, answers as :class:`Answer`."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Obj | bytes | None = None,
        content_type: str = "application/json",
    ) -> Answer:
        method_, url, headers = prepare(self.api_client, method, path, query, content_type)
        response = self.api_client.rest_client.request(
            method_, url, headers=headers, body=body, _request_timeout=(5, 60)
        )
        data = response.read()
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {"message": data.decode("utf-8", "replace")}
        if not isinstance(parsed, dict):
            parsed = {"message": str(parsed)}
        return Answer(int(response.status), parsed, _warnings(response.headers.getlist("Warning")))

    @staticmethod
    def app_path(namespace: str, name: str | None = None) -> str:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
        return f"{path}/{name}" if name else path

    def create_app(self, doc: Obj, *, dry_run: bool = True) -> Answer:
        """POST a PythonApp as ``kubectl create`` does: strict field validation, numbers as
        kubectl writes them (:func:`as_kubectl_sends`)."""
        query = {"fieldValidation": "Strict"}
        if dry_run:
            query["dryRun"] = "All"
        return self.call("POST", self.app_path(doc["metadata"]["namespace"]), query=query, body=doc)

    def apply(self, manifest: Obj, *, dry_run: bool = True) -> Answer:
        """Server-side apply one child as the operator does (its field manager, force, strict)."""
        kind = KINDS_BY_KIND[manifest["kind"]]
        meta = manifest["metadata"]
        query = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"}
        if dry_run:
            query["dryRun"] = "All"
        return self.call(
            "PATCH",
            kind.path(meta["namespace"], meta["name"]),
            query=query,
            body=apply_body(manifest),  # the operator's own body
            content_type="application/apply-patch+yaml",
        )
