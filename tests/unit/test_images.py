"""The image pipeline's pure parts: the tools' command lines, the app layer, the registry's
config and record, and the CLI's refusal without a registry. The tools themselves run in
tests/e2e/test_images.py (marked ``realnode``)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from pythonapp_operator.api.image import parse_image
from pythonapp_operator.cli import main
from pythonapp_operator.devcluster import images, registry
from pythonapp_operator.devcluster.errors import DevClusterError

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "app"


def test_mmdebstrap_argv_options_before_suite_output_and_mirrors(tmp_path: Path) -> None:
    spec = images.BaseSpec()
    argv = images.mmdebstrap_argv(spec, tmp_path / "rootfs.tar")
    suite_at = argv.index("bookworm")
    assert argv[0] == "mmdebstrap"
    assert all(a.startswith("--") for a in argv[1:suite_at])
    assert argv[suite_at + 1] == str(tmp_path / "rootfs.tar")
    assert argv[suite_at + 2 :] == list(spec.mirrors)
    assert {"--variant=essential", "--include=python3", "--skip=output/dev"} <= set(argv)
    for path in ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*"):
        assert f"--dpkgopt=path-exclude={path}" in argv
    assert any("debian-security bookworm-security" in m for m in spec.mirrors)


def test_base_key_follows_every_input() -> None:
    spec = images.BaseSpec()
    assert spec.key() == images.BaseSpec().key()
    assert len(spec.key()) == 16
    changed = [
        dataclasses.replace(spec, include=("python3", "curl")),
        dataclasses.replace(spec, suite="trixie"),
        dataclasses.replace(spec, dpkg_options=()),
        dataclasses.replace(spec, mirrors=spec.mirrors[:1]),
    ]
    assert len({spec.key(), *(c.key() for c in changed)}) == 5


def test_umoci_config_argv_sets_the_dockerfiles_config(tmp_path: Path) -> None:
    argv = images.umoci_config_argv(tmp_path, "sample-app", images.ImageConfig())
    assert argv[:3] == ["umoci", "config", "--no-history"]
    assert f"--image={tmp_path}:sample-app" in argv
    assert "--config.user=10001:10001" in argv
    assert "--config.workingdir=/app" in argv
    assert f"--created={images.CREATED}" in argv
    # the command in order, as separate words
    assert [a for a in argv if a.startswith("--config.cmd=")] == [
        "--config.cmd=python3",
        "--config.cmd=/app/app.py",
    ]
    assert not any(a.startswith("--config.entrypoint") for a in argv)
    envs = {a.removeprefix("--config.env=") for a in argv if a.startswith("--config.env=")}
    assert {"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "PORT=8000"} <= envs
    assert any(e.startswith("PATH=") and "/usr/bin" in e for e in envs)


def test_add_layer_argv_has_a_fixed_history_time(tmp_path: Path) -> None:
    argv = images.add_layer_argv(tmp_path, "base", tmp_path / "app.tar", "the app", "web")
    assert argv[:3] == ["umoci", "raw", "add-layer"]
    assert f"--history.created={images.CREATED}" in argv
    assert "--tag=web" in argv
    assert argv[-1] == str(tmp_path / "app.tar")
    assert "--tag=web" not in images.add_layer_argv(tmp_path, "base", tmp_path / "x.tar", "x")


def test_skopeo_push_keeps_the_digest_and_stays_on_http(tmp_path: Path) -> None:
    argv = images.skopeo_push_argv(
        tmp_path, "app", "127.0.0.1:5000/app:build-1", tmp_path / "digest"
    )
    assert argv[:3] == ["skopeo", "--insecure-policy", "copy"]
    assert "--preserve-digests" in argv
    assert "--dest-tls-verify=false" in argv
    assert f"--digestfile={tmp_path / 'digest'}" in argv
    assert argv[-2:] == [f"oci:{tmp_path}:app", "docker://127.0.0.1:5000/app:build-1"]


def test_compile_argv_hash_checked_bytecode_named_under_app(tmp_path: Path) -> None:
    argv = images.compile_argv("python3.11", tmp_path)
    assert argv[:3] == ["python3.11", "-m", "compileall"]
    assert "--invalidation-mode=checked-hash" in argv
    assert f"-s={tmp_path}" in argv
    assert "-p=/app" in argv


def test_app_files_leave_out_recipes_hidden_files_and_bytecode(tmp_path: Path) -> None:
    for rel in ("app.py", "pkg/mod.py", "pkg/data.json", "Dockerfile", ".env", "x.pyc"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    for rel in (".git/config", "__pycache__/app.cpython-311.pyc", ".venv/bin/python"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert images.app_files(tmp_path) == [
        Path("app.py"),
        Path("pkg"),
        Path("pkg/data.json"),
        Path("pkg/mod.py"),
    ]
    assert Path("app.py") in images.app_files(APP)
    assert Path("Dockerfile") not in images.app_files(APP)


def _layer(tmp_path: Path, staging: Path, name: str) -> bytes:
    out = tmp_path / name
    images.write_app_layer(staging, out)
    return out.read_bytes()


def test_app_layer_is_root_owned_read_only_and_reproducible(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    (staging / "pkg").mkdir(parents=True)
    (staging / "app.py").write_text("print('hi')\n")
    (staging / "run.sh").write_text("#!/bin/sh\n")
    (staging / "run.sh").chmod(0o775)
    (staging / "pkg" / "mod.py").write_text("X = 1\n")
    first = _layer(tmp_path, staging, "a.tar")
    os.utime(staging / "app.py", (1_700_000_000, 1_700_000_000))  # another checkout time
    (staging / "app.py").chmod(0o666)
    assert _layer(tmp_path, staging, "b.tar") == first

    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "app",
        "app/app.py",
        "app/pkg",
        "app/pkg/mod.py",
        "app/run.sh",
    ]
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, images.SOURCE_DATE_EPOCH)}
    modes = {m.name: m.mode for m in members}
    assert modes == {
        "app": 0o755,
        "app/app.py": 0o644,
        "app/pkg": 0o755,
        "app/pkg/mod.py": 0o644,
        "app/run.sh": 0o755,
    }


def test_check_name_takes_what_a_pythonapp_takes() -> None:
    for good in ("sample-app", "team/web", "a.b_c"):
        images.check_name(good, "127.0.0.1:5000")
        parse_image(f"127.0.0.1:5000/{good}@sha256:{'a' * 64}")
    for bad in ("Sample", "app!", "-app", "a//b", ""):
        with pytest.raises(DevClusterError, match="not a valid image name"):
            images.check_name(bad, "127.0.0.1:5000")


def test_registry_config_is_loopback_only_with_its_storage(tmp_path: Path) -> None:
    cfg = registry.config(5123, tmp_path / "storage")
    assert cfg["http"]["addr"] == "127.0.0.1:5123"
    assert cfg["storage"]["filesystem"]["rootdirectory"] == str(tmp_path / "storage")
    assert "debug" not in cfg["http"]  # a second listener
    assert "auth" not in cfg
    assert registry.argv("/usr/bin/docker-registry", tmp_path) == [
        "/usr/bin/docker-registry",
        "serve",
        str(tmp_path / "config.yml"),
    ]


def test_registry_record_round_trips_and_a_dead_one_is_not_running(tmp_path: Path) -> None:
    rec = registry.Registry("127.0.0.1:5123", 2**22 + 7, 1, tmp_path)
    assert registry.Registry.from_json(json.loads(json.dumps(rec.to_json()))) == rec
    assert registry.running(tmp_path) is None  # no record
    registry.record_path(tmp_path).write_text(json.dumps(rec.to_json()))
    assert registry.running(tmp_path) is None  # no such process
    registry.record_path(tmp_path).write_text("{not json")
    assert registry.running(tmp_path) is None
    registry.stop(tmp_path)  # a broken record is nothing to stop


def test_registry_port_is_read_back_from_its_config(tmp_path: Path) -> None:
    assert registry.recorded_port(tmp_path) is None
    registry.config_path(tmp_path).write_text(json.dumps(registry.config(5123, tmp_path)))
    assert registry.recorded_port(tmp_path) == 5123
    registry.config_path(tmp_path).write_text("{}")
    assert registry.recorded_port(tmp_path) is None


def test_registry_lives_in_the_cluster_state_dir(tmp_path: Path) -> None:
    assert registry.root_of(tmp_path) == tmp_path.resolve() / "registry"


def test_image_build_without_a_registry_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYTHONAPP_DEV_STATE", str(tmp_path / "no-cluster"))
    assert main(["dev", "image", "build", str(APP)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("pythonapp dev image build: no image registry is running")
    assert "pythonapp dev up --real-node" in lines[0]
