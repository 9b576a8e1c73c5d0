"""The operator's image built without Docker declares what the Dockerfile declares."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pythonapp_operator.devcluster import images, operator_image

ROOT = Path(__file__).resolve().parents[2]


def _dockerfile_runtime() -> str:
    text = (ROOT / "Dockerfile").read_text()
    return text[text.rindex("\nFROM ") :]  # the runtime stage


def _json_instruction(stage: str, name: str) -> list[str]:
    match = re.search(rf"^{name} (\[.*\])$", stage, re.MULTILINE)
    assert match, f"the Dockerfile's runtime stage has no {name} in exec form"
    parsed: list[str] = json.loads(match.group(1))
    return parsed


def test_entrypoint_cmd_user_and_ports_are_the_dockerfiles() -> None:
    stage = _dockerfile_runtime()
    cfg = operator_image.CONFIG
    assert list(cfg.entrypoint) == _json_instruction(stage, "ENTRYPOINT")
    assert list(cfg.cmd) == _json_instruction(stage, "CMD")
    user = re.search(r"^USER (\S+)$", stage, re.MULTILINE)
    assert user and cfg.user == user.group(1)
    expose = re.search(r"^EXPOSE (.+)$", stage, re.MULTILINE)
    assert expose and {f"{p}/tcp" for p in expose.group(1).split()} == set(cfg.exposed_ports)
    env = re.search(r"^ENV (.+?)(?<!\\)$", stage, re.MULTILINE | re.DOTALL)
    assert env, "the Dockerfile's runtime stage has no ENV"
    declared = {
        kv for kv in env.group(1).replace("\\\n", " ").split() if not kv.startswith("PATH=")
    }
    assert declared == {e for e in cfg.env if not e.startswith("PATH=")}


def test_the_project_is_the_lock_the_package_and_pyprojects_script() -> None:
    project = operator_image.project()
    assert project.requirements == ROOT / "requirements.lock"
    assert project.packages == (ROOT / "operator" / "pythonapp_operator",)
    assert ("pythonapp", "pythonapp_operator.cli:main") in project.scripts


def test_pip_installs_only_hash_checked_wheels_of_the_lock(tmp_path: Path) -> None:
    argv = images.pip_install_argv("python3.11", ROOT / "requirements.lock", tmp_path)
    assert {"--require-hashes", "--only-binary=:all:", "--no-deps"} <= set(argv)
    assert f"--target={tmp_path}" in argv
    assert argv[-2:] == ["-r", str(ROOT / "requirements.lock")]


def test_the_entrypoint_goes_into_the_umoci_config(tmp_path: Path) -> None:
    argv = images.umoci_config_argv(tmp_path, "op", operator_image.CONFIG)
    assert argv.index("--config.entrypoint=pythonapp") < argv.index("--config.entrypoint=operator")
    assert "--config.cmd=--all-namespaces" in argv
    assert not [
        a
        for a in images.umoci_config_argv(tmp_path, "app", images.ImageConfig())
        if a.startswith("--config.entrypoint")
    ]


def test_a_console_script_runs_the_entry_point_on_the_images_python() -> None:
    text = images.script_text("pythonapp_operator.cli:main")
    assert text.startswith("#!/usr/bin/python3\n")
    assert "from pythonapp_operator.cli import main" in text
    compile(text, "pythonapp", "exec")
