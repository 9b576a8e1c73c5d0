"""examples/app/Dockerfile: built the way the operator expects an image to be built, checked
without a Docker engine (dockerfile-parse reads it as Docker does; hadolint lints it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser
from tests.deploy.tools import hadolint, run

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "app"
DIGEST_FROM = re.compile(r"^[\w.\-/:]+@sha256:[0-9a-f]{64}(\s+AS\s+\w+)?$", re.IGNORECASE)


def instructions() -> list[dict[str, Any]]:
    structure: list[dict[str, Any]] = DockerfileParser(path=str(APP_DIR / "Dockerfile")).structure
    return structure


def runtime_stage() -> list[dict[str, Any]]:
    froms = [i for i, ins in enumerate(instructions()) if ins["instruction"] == "FROM"]
    return instructions()[froms[-1] :]


def values(stage: list[dict[str, Any]], instruction: str) -> list[str]:
    return [ins["value"] for ins in stage if ins["instruction"] == instruction]


def test_hadolint_has_no_findings() -> None:
    proc = run([hadolint(), "--no-color", "--format", "json", APP_DIR / "Dockerfile"])
    findings = json.loads(proc.stdout or "[]")
    assert proc.returncode == 0 and not findings, findings or proc.stderr


def test_multi_stage_from_one_base_pinned_by_digest() -> None:
    froms = values(instructions(), "FROM")
    assert len(froms) == 2, froms
    assert all(DIGEST_FROM.match(value) for value in froms), froms
    assert froms[0].split()[0] == froms[1].split()[0]
    assert values(runtime_stage(), "COPY") == ["--from=builder /app /app"]
    assert not values(runtime_stage(), "RUN"), "the runtime stage only receives the app"


def test_runs_as_uid_10001_with_exec_form_cmd_and_a_healthcheck() -> None:
    stage = runtime_stage()
    assert values(stage, "USER") == ["10001:10001"]
    assert json.loads(values(stage, "CMD")[-1]) == ["python", "/app/app.py"]
    (check,) = values(stage, "HEALTHCHECK")
    assert "CMD [" in check and "/health" in check and "curl" not in check, check


def test_no_secrets_in_the_image_and_a_tight_build_context() -> None:
    for ins in instructions():
        if ins["instruction"] in {"ENV", "ARG"}:
            assert not re.search(r"TOKEN|SECRET|PASSWORD|KEY", ins["value"], re.I), ins
    ignore = [
        line
        for line in (APP_DIR / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore == ["*", "!app.py"], "allow-list only what the Dockerfile copies"
