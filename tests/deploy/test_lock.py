"""requirements.lock: the image's runtime dependencies, pinned and hash-checked, and proven.
requirements-dev.lock: the same for the dev/test virtualenv (`make venv`), agreeing with it.

* every requirement is pinned with `==` and carries `--hash=sha256:` (so does the build
  toolchain's requirements-build.lock);
* the lock covers every runtime dependency pyproject.toml declares, at a version it allows;
* the runtime works from the lock alone, without Docker: a fresh virtualenv gets
  `pip install --require-hashes -r requirements.lock`, then the operator's wheel `--no-deps`
  (built offline with the locked toolchain, as the Dockerfile does), and `pythonapp --version`
  and `pythonapp render` run from it as uid/gid 10001, the image's user.

Regenerate the locks after changing dependencies (pip-tools is in the dev extra):
  pip-compile --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
    -o requirements.lock pyproject.toml
  pip-compile --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
    --no-emit-find-links -o requirements-build.lock requirements-build.in
  make lock-dev    # requirements-dev.lock, constrained by the two above
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from tests.deploy.tools import REPO

LOCK = REPO / "requirements.lock"
BUILD_LOCK = REPO / "requirements-build.lock"
DEV_LOCK = REPO / "requirements-dev.lock"
RUNTIME_UID = 10001
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def requirements(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes), from pip-compile's format (continuation lines, comments)."""
    text = re.sub(r"\\\n", " ", lock.read_text())
    out: dict[str, tuple[str, list[str]]] = {}
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{lock.name}: not pinned with ==: {line[:120]}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]+)", line)
        assert hashes, f"{lock.name}: {match[1]} has no --hash=sha256:"
        assert all(len(h) == 64 for h in hashes), f"{lock.name}: {match[1]}: malformed hash"
        assert not re.search(r"--hash=(?!sha256:)", line), f"{lock.name}: only sha256 hashes"
        out[str(canonicalize_name(match[1]))] = (match[2], hashes)
    return out


@pytest.mark.parametrize("lock", [LOCK, BUILD_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_line_is_pinned_and_hashed(lock: Path) -> None:
    reqs = requirements(lock)
    assert reqs, f"{lock.name} is empty"
    options = [
        line
        for line in lock.read_text().splitlines()
        if line.startswith("-") and not line.startswith("    --hash")
    ]
    assert not options, f"{lock.name}: no index/find-links options (machine-specific): {options}"


def test_lock_covers_the_runtime_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    locked = requirements(LOCK)
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = str(canonicalize_name(req.name))
        assert name in locked, f"{req.name} is in pyproject.toml but not in requirements.lock"
        version = locked[name][0]
        assert req.specifier.contains(Version(version), prereleases=True), (
            f"requirements.lock pins {req.name}=={version}, outside pyproject's {req.specifier}:"
            " regenerate the lock"
        )


def test_lock_holds_no_test_dev_or_bench_tools() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = {
        str(canonicalize_name(Requirement(s).name))
        for group in ("test", "dev", "bench")
        for s in project["optional-dependencies"][group]
    }
    runtime = {str(canonicalize_name(Requirement(s).name)) for s in project["dependencies"]}
    leaked = (extras - runtime) & set(requirements(LOCK))
    assert not leaked, f"test/dev/bench tools in the runtime lock: {sorted(leaked)}"


def test_build_lock_has_the_build_backend() -> None:
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    locked = requirements(BUILD_LOCK)
    assert "pip" in locked
    for spec in build:
        req = Requirement(spec)
        name = str(canonicalize_name(req.name))
        assert name in locked, f"build requirement {req.name} missing from requirements-build.lock"
        assert req.specifier.contains(Version(locked[name][0]))


def test_dev_lock_covers_everything_make_venv_installs() -> None:
    """Runtime, test and dev extras, and the build toolchain: `pip install --require-hashes`
    refuses the whole install if one of them (or a dependency of one) is missing."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = pyproject["project"]
    specs = [
        *project["dependencies"],
        *(s for group in ("test", "dev") for s in project["optional-dependencies"][group]),
        *pyproject["build-system"]["requires"],
        *(
            line.strip()
            for line in (REPO / "requirements-build.in").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ),
    ]
    locked = requirements(DEV_LOCK)
    for spec in specs:
        req = Requirement(spec)
        name = str(canonicalize_name(req.name))
        assert name in locked, f"{req.name} is not in requirements-dev.lock: run `make lock-dev`"
        assert req.specifier.contains(Version(locked[name][0]), prereleases=True), (
            f"requirements-dev.lock pins {req.name}=={locked[name][0]}, outside {req.specifier}:"
            " run `make lock-dev`"
        )


@pytest.mark.parametrize("other", [LOCK, BUILD_LOCK], ids=lambda p: p.name)
def test_dev_lock_agrees_with(other: Path) -> None:
    """What the tests run is what the image runs: the same version of every shared package."""
    dev = requirements(DEV_LOCK)
    differ = {
        name: (version, dev[name][0])
        for name, (version, _) in requirements(other).items()
        if name in dev and dev[name][0] != version
    }
    missing = sorted(set(requirements(other)) - set(dev))
    assert not differ and not missing, (
        f"requirements-dev.lock disagrees with {other.name} (theirs, dev): {differ}, "
        f"missing {missing}: run `make lock-dev`"
    )


def test_make_venv_installs_only_from_the_dev_lock() -> None:
    makefile = (REPO / "Makefile").read_text()
    rule = makefile.split("$(BIN)/pythonapp:", 1)[1].split("\n\n", 1)[0]
    installs = [line.strip() for line in rule.splitlines() if "pip install" in line]
    assert installs, rule
    assert "--require-hashes -r requirements-dev.lock" in installs[0], installs
    for line in installs[1:]:
        assert "--no-deps" in line and "--no-build-isolation" in line, line


def test_license_is_an_spdx_expression() -> None:
    """setuptools >= 77 deprecates the ``{text = ...}`` table (a warning on every install)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert isinstance(pyproject["project"]["license"], str), 'use license = "Apache-2.0"'
    assert not any(c.startswith("License ::") for c in pyproject["project"].get("classifiers", []))
    (setuptools,) = [
        Requirement(r) for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")
    ]
    assert not setuptools.specifier.contains("76.9"), "license expressions need setuptools>=77"


@pytest.fixture(scope="module")
def world_readable_tmp() -> Iterator[Path]:
    """A temp dir the image's uid can read (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="pythonapp-lock-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run(cmd: list[str | Path], **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=600, check=False, **kw
    )
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def locked_venv(world_readable_tmp: Path) -> Path:
    """The image's /opt/venv, built the Dockerfile's way (pip's own download cache kept)."""
    if os.geteuid() != 0:
        pytest.fail("this test runs the result as uid 10001 and needs root", pytrace=False)
    tmp = world_readable_tmp
    build, venv, wheels = tmp / "build", tmp / "venv", tmp / "wheels"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_FIND_LINKS")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    python = sys.executable
    run([python, "-m", "venv", build])
    run([build / "bin/pip", "install", "-q", "--require-hashes", "-r", BUILD_LOCK], env=env)
    run([python, "-m", "venv", "--without-pip", venv])
    pip = [build / "bin/pip", "--python", venv / "bin/python", "install", "-q"]
    run([*pip, "--require-hashes", "-r", LOCK], env=env)
    src = tmp / "src"  # only what the build context holds (see .dockerignore)
    shutil.copytree(
        REPO / "operator", src / "operator", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    shutil.copy2(REPO / "pyproject.toml", src / "pyproject.toml")
    run(
        [build / "bin/pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, src],
        env=env,
    )
    (wheel,) = wheels.glob("pythonapp_operator-*.whl")
    run([*pip, "--no-deps", "--no-index", wheel], env=env)
    run(["chmod", "-R", "a+rX", tmp])
    return venv


def as_image_user(cmd: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to run as uid 10001", pytrace=False)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"}
    uid = str(RUNTIME_UID)
    return run(
        [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *cmd], cwd=cwd, env=env
    )


def test_locked_runtime_runs_as_the_image_user(locked_venv: Path) -> None:
    tmp = locked_venv.parent
    who = as_image_user(["id", "-u"], tmp)
    assert who.stdout.strip() == str(RUNTIME_UID)
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    out = as_image_user([locked_venv / "bin/pythonapp", "--version"], tmp)
    assert out.stdout.strip() == f"pythonapp {version}"
    example = tmp / "web.yaml"
    shutil.copy2(REPO / "examples" / "web.yaml", example)
    example.chmod(0o644)
    rendered = as_image_user([locked_venv / "bin/pythonapp", "render", example], tmp)
    kinds = [d["kind"] for d in yaml.safe_load_all(rendered.stdout) if d]
    assert kinds and kinds[0] == "Deployment", kinds


def test_wheel_builds_without_warnings(locked_venv: Path) -> None:
    """The locked toolchain builds the operator's wheel from a checkout without a warning
    (setuptools deprecated the ``license = {text = ...}`` table; an SPDX string is current).
    The README goes along, as in a checkout or an sdist: the image's build context leaves it
    out, and setuptools then warns that the long description is missing."""
    tmp = locked_venv.parent
    shutil.copy2(REPO / "README.md", tmp / "src" / "README.md")
    pip = tmp / "build/bin/pip"
    out = run(
        [pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp / "w2", tmp / "src"],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    noise = [
        line
        for line in (out.stdout + out.stderr).splitlines()
        if re.search(r"warn|deprecat", line, re.IGNORECASE)
    ]
    assert not noise, "\n".join(noise)


def test_locked_runtime_imports_the_operator_stack(locked_venv: Path) -> None:
    """What `pythonapp operator` imports (kopf, the handlers) loads from the lock alone."""
    tmp = locked_venv.parent
    code = (
        "import kopf, kubernetes, pythonapp_operator.controller.handlers, "
        "pythonapp_operator.controller.runner, pythonapp_operator.controller.health"
    )
    as_image_user([locked_venv / "bin/python", "-c", code], tmp)
    assert not (locked_venv / "bin" / "pip").exists(), "the runtime venv should carry no pip"
