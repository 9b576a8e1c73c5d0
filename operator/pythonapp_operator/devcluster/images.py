"""Container images without Docker: a Debian base with python3, the app as a layer, by digest.

The real node runs images from the loopback registry (:mod:`.registry`), built here with
Debian's tools and no daemon:

1. the base: ``mmdebstrap --variant=essential --include=python3`` (Debian's Essential set plus
   python3 and its dependencies; no apt, no man pages, docs or locales), made into a one-layer
   OCI image by ``umoci``. Built once (~30-45 s) and cached under
   ``~/.cache/pythonapp-operator/images/base-<key>``, the key being a hash of everything that
   went into it (suite, mirrors, packages, excludes, this recipe's version);
2. the app: the files of the app directory under ``/app`` as a second layer (owned by root,
   read-only for the app's user, bytecode compiled ahead because the pod's root filesystem is
   read-only), and the image config the sample Dockerfile declares (user 10001:10001, workdir
   /app, ``CMD ["python3", "/app/app.py"]``, unbuffered output, no bytecode writes);
3. ``skopeo copy`` to the registry, digests preserved; the caller gets
   ``127.0.0.1:PORT/NAME@sha256:<digest>``, the only form a PythonApp accepts.

Reproducible where it is cheap: mmdebstrap and the app layer use ``SOURCE_DATE_EPOCH`` (0),
entries are sorted and owned by root, the config's creation time is fixed and no history is
written, so the same base and the same app files give the same digest. (The base itself is as
reproducible as the Debian mirror: the same packages give the same tar.)

Each slow step prints one line with the time elapsed; what the tools print goes to a log file
named on the first line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..api import image as image_policy
from .errors import DevClusterError
from .paths import cache_root
from .registry import PACKAGES_HINT

Log = Callable[[str], None]

RECIPE_VERSION = 2
"""Bump when the base recipe changes in a way the key below does not capture."""
SOURCE_DATE_EPOCH = 0
"""Every timestamp in the layers and the config: the same inputs give the same digest."""
CREATED = "1970-01-01T00:00:00Z"
BASE_TAG = "base"


@dataclass(frozen=True)
class BaseSpec:
    """What goes into the base rootfs; its hash is the cache key."""

    suite: str = "bookworm"
    variant: str = "essential"
    include: tuple[str, ...] = ("python3",)
    mirrors: tuple[str, ...] = (
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    )
    """The updates and security suites too: a base without security fixes is not one to run."""
    dpkg_options: tuple[str, ...] = (
        "path-exclude=/usr/share/man/*",
        "path-exclude=/usr/share/info/*",
        "path-exclude=/usr/share/locale/*",
        "path-exclude=/usr/share/doc/*",
        "path-include=/usr/share/doc/*/copyright",
    )
    """Leave out what no container reads; keep the licences."""
    skip: tuple[str, ...] = ("output/dev",)
    """No device nodes in the layer: the runtime gives the container its own /dev."""

    def key(self) -> str:
        """A short hash of every input: a changed input builds a new base beside the old."""
        data = json.dumps(
            {"recipe": RECIPE_VERSION, "epoch": SOURCE_DATE_EPOCH, "spec": self.__dict__},
            sort_keys=True,
        )
        return hashlib.sha256(data.encode()).hexdigest()[:16]


def mmdebstrap_argv(spec: BaseSpec, output: Path) -> list[str]:
    """The mmdebstrap command that writes the base rootfs as an uncompressed tar."""
    argv = ["mmdebstrap", f"--variant={spec.variant}"]
    if spec.include:
        argv.append(f"--include={','.join(spec.include)}")
    argv += [f"--dpkgopt={opt}" for opt in spec.dpkg_options]
    argv += [f"--skip={skip}" for skip in spec.skip]
    return [*argv, spec.suite, str(output), *spec.mirrors]


@dataclass(frozen=True)
class ImageConfig:
    """The OCI image config of an app image: what the sample app's Dockerfile declares.

    ``cmd`` rather than an entrypoint, as in the Dockerfile: a PythonApp's ``command`` replaces
    the whole command line (a crash or OOM test runs the same image with another command).
    Debian's essential set has no ``python`` name, hence ``python3``.
    """

    user: str = "10001:10001"
    workdir: str = "/app"
    cmd: tuple[str, ...] = ("python3", "/app/app.py")
    entrypoint: tuple[str, ...] = ()
    """Empty for apps (see above); the operator's image has one, as its Dockerfile says."""
    env: tuple[str, ...] = (
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONUNBUFFERED=1",
        "PYTHONDONTWRITEBYTECODE=1",
        "PORT=8000",
    )
    exposed_ports: tuple[str, ...] = ("8000/tcp",)
    labels: tuple[str, ...] = field(default_factory=tuple)


def add_layer_argv(
    layout: Path, tag: str, tar: Path, created_by: str, new_tag: str | None = None
) -> list[str]:
    """``umoci raw add-layer``: the tar verbatim as the next layer, with a history entry whose
    time is fixed (history is part of the config, so of the digest)."""
    argv = [
        "umoci",
        "raw",
        "add-layer",
        f"--image={layout}:{tag}",
        f"--history.created={CREATED}",
        f"--history.created_by={created_by}",
    ]
    if new_tag is not None:
        argv.append(f"--tag={new_tag}")
    return [*argv, str(tar)]


def umoci_config_argv(layout: Path, tag: str, config: ImageConfig) -> list[str]:
    """``umoci config`` setting the whole config, with a fixed creation time and no history."""
    argv = [
        "umoci",
        "config",
        "--no-history",
        f"--image={layout}:{tag}",
        f"--created={CREATED}",
        f"--config.user={config.user}",
        f"--config.workingdir={config.workdir}",
    ]
    argv += [f"--config.entrypoint={part}" for part in config.entrypoint]
    argv += [f"--config.cmd={part}" for part in config.cmd]
    argv += [f"--config.env={env}" for env in config.env]
    argv += [f"--config.exposedports={port}" for port in config.exposed_ports]
    argv += [f"--config.label={label}" for label in config.labels]
    return argv


def skopeo_push_argv(layout: Path, tag: str, destination: str, digest_file: Path) -> list[str]:
    """``skopeo copy`` of the layout's image to a loopback registry over plain HTTP.

    ``--preserve-digests``: the registry must hold exactly the manifest built here, so the
    digest computed locally is the one pods pull. ``--insecure-policy``: no signature policy
    applies to an image this process has just built from local files (it also keeps the host's
    /etc/containers/policy.json out of the way). ``--dest-tls-verify=false``: the registry
    speaks HTTP on 127.0.0.1 only.
    """
    return [
        "skopeo",
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"--digestfile={digest_file}",
        f"oci:{layout}:{tag}",
        f"docker://{destination}",
    ]


# Files of an app directory that are not the app: build recipes, VCS, caches, local venvs.
_SKIP_NAMES = frozenset({"Dockerfile", ".dockerignore", "__pycache__"})


def app_files(app_dir: Path) -> list[Path]:
    """The app's files and directories (relative, sorted): all but hidden ones, build recipes
    and bytecode caches (bytecode is compiled for the image's python instead)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(app_dir):
        here = Path(dirpath).relative_to(app_dir)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_NAMES)
        found += [here / d for d in dirnames]
        found += [
            here / f
            for f in filenames
            if not f.startswith(".") and f not in _SKIP_NAMES and not f.endswith(".pyc")
        ]
    return sorted(found)


def write_app_layer(staging: Path, output: Path, prefix: str = "app") -> None:
    """A tar of ``staging`` under ``prefix``: sorted, owned by root, fixed times, and modes
    that let any user read (and run what was executable) but write nothing."""

    def entry(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = SOURCE_DATE_EPOCH
        if info.isdir() or info.mode & 0o100:
            info.mode = 0o755
        else:
            info.mode = 0o644
        return info

    paths = [
        (Path(dirpath) / name).relative_to(staging)
        for dirpath, dirnames, filenames in os.walk(staging)
        for name in [*dirnames, *filenames]
    ]
    with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(staging, arcname=prefix, recursive=False, filter=entry)
        for rel in sorted(paths):
            arcname = f"{prefix}/{rel.as_posix()}"
            tar.add(staging / rel, arcname=arcname, recursive=False, filter=entry)


def compile_argv(python: str, staging: Path, prefix: str = "/app") -> list[str]:
    """compileall for the image's Python version: hash-checked bytecode (no source mtimes in
    it, so reproducible), file names as the image sees them (``/app/...``)."""
    return [
        python,
        "-m",
        "compileall",
        "-q",
        "--invalidation-mode=checked-hash",
        f"-s={staging}",
        f"-p={prefix}",
        str(staging),
    ]


# ---------------------------------------------------------------------------------- running it


class _Steps:
    """One line per step with the time since the build began; tools' output to a log file."""

    def __init__(self, log: Log, log_file: Path) -> None:
        self.say = log
        self.log_file = log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self.t0 = time.monotonic()

    def line(self, msg: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.say(f"[image {time.monotonic() - self.t0:5.1f}s] {msg}")

    def run(self, argv: Sequence[str], what: str, env: dict[str, str] | None = None) -> None:
        """Run a tool with its output in the log; a failure names the step and the log."""
        with self.log_file.open("a") as out:
            out.write(f"\n$ {' '.join(argv)}\n")
            out.flush()
            try:
                done = subprocess.run(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=None if env is None else {**os.environ, **env},
                    check=False,
                )
            except FileNotFoundError:
                raise _missing(argv[0]) from None
        if done.returncode != 0:
            raise DevClusterError(
                f"{what} failed (`{argv[0]}` exit {done.returncode}); see {self.log_file}"
            )


def _missing(tool: str) -> DevClusterError:
    return DevClusterError(
        f"building images needs `{tool}` (Debian package): run `{PACKAGES_HINT}` as root"
    )


def require_tools(tools: Sequence[str] = ("mmdebstrap", "umoci", "skopeo")) -> None:
    """Refuse early, in one line, when a tool is not installed."""
    for tool in tools:
        if shutil.which(tool) is None:
            raise _missing(tool)


def images_dir(cache: Path | None = None) -> Path:
    """Where bases, build logs (``logs/NAME.log``) and scratch layouts live."""
    return (cache or cache_root()) / "images"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One base build at a time (a test and the demo may ask at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Base:
    """A cached base image: an OCI layout tagged :data:`BASE_TAG`, and its python version."""

    layout: Path
    python: str
    """``3.11``: which interpreter compiles the app's bytecode."""


def _python_version(rootfs_tar: Path) -> str:
    """The image's python3 version, read from the ``usr/bin/python3`` symlink in the tar."""
    with tarfile.open(rootfs_tar) as tar:
        for member in tar:
            if member.name.lstrip("./") == "usr/bin/python3" and member.issym():
                return member.linkname.removeprefix("python")
    raise DevClusterError(f"the base rootfs {rootfs_tar} has no usr/bin/python3")


def ensure_base(
    spec: BaseSpec = BaseSpec(), *, cache: Path | None = None, steps: _Steps | None = None
) -> Base:
    """The cached base image for ``spec``, built first if missing (the only slow step)."""
    root = images_dir(cache)
    steps = steps or _Steps(print, root / "logs" / "base.log")
    final = root / f"base-{spec.key()}"
    meta = final / "base.json"
    with _locked(root / "base.lock"):
        if meta.exists():
            return Base(final / "oci", json.loads(meta.read_text())["python"])
        require_tools()
        steps.line(
            f"base rootfs: mmdebstrap {spec.suite} + {', '.join(spec.include)} "
            "(first time only: 30 s idle, 2 min on a busy machine)"
        )
        work = Path(tempfile.mkdtemp(dir=root, prefix="base-tmp-"))
        try:
            python = _build_base(spec, work, steps)
            for old in root.glob("base-*"):
                # other recipes' bases (nothing builds from them any more) and the leftovers of
                # an interrupted build; the lock is held, so no other build is under way
                if old != work:
                    shutil.rmtree(old, ignore_errors=True)
            work.rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return Base(final / "oci", python)


def _build_base(spec: BaseSpec, work: Path, steps: _Steps) -> str:
    """mmdebstrap, then the tar as the one layer of an OCI layout in ``work``; the python
    version is returned and recorded in ``base.json`` (the mark of a finished base)."""
    tar = work / "rootfs.tar"
    steps.run(
        mmdebstrap_argv(spec, tar),
        "the base rootfs (mmdebstrap)",
        env={"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)},
    )
    python = _python_version(tar)
    steps.line(f"base layer: the {tar.stat().st_size >> 20} MiB rootfs into an OCI image (umoci)")
    layout = work / "oci"
    steps.run(["umoci", "init", f"--layout={layout}"], "umoci init")
    steps.run(["umoci", "new", f"--image={layout}:{BASE_TAG}"], "umoci new")
    steps.run(
        add_layer_argv(layout, BASE_TAG, tar, f"mmdebstrap {spec.suite} {' '.join(spec.include)}"),
        "adding the rootfs layer (umoci)",
    )
    tar.unlink()
    (work / "base.json").write_text(
        json.dumps({"python": python, "spec": spec.__dict__}, indent=2) + "\n"
    )
    return python


def _manifest_digest(layout: Path, tag: str) -> str:
    """The manifest digest the layout's index gives ``tag`` (what skopeo must preserve)."""
    index = json.loads((layout / "index.json").read_text())
    for desc in index.get("manifests", []):
        if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return str(desc["digest"])
    raise DevClusterError(f"umoci left no manifest tagged {tag} in {layout}")


def check_name(name: str, registry: str) -> None:
    """Refuse a name the reference grammar (and so a PythonApp) would refuse, before building."""
    try:
        image_policy.parse_image(f"{registry}/{name}@sha256:{'0' * 64}")
    except image_policy.ImageError:
        raise DevClusterError(
            f"{name!r} is not a valid image name: lowercase letters, digits and . _ - "
            "between them, / between path components"
        ) from None


def build(
    app_dir: Path,
    registry: str,
    name: str | None = None,
    *,
    config: ImageConfig = ImageConfig(),
    base: BaseSpec = BaseSpec(),
    cache: Path | None = None,
    log: Log = print,
) -> str:
    """Build ``app_dir``'s image, push it to ``registry`` (``127.0.0.1:PORT``) and return
    ``127.0.0.1:PORT/NAME@sha256:<digest>``. ``name`` defaults to the directory's name."""
    app_dir = app_dir.resolve()
    if not app_dir.is_dir():
        raise DevClusterError(f"{app_dir} is not a directory")
    name = name or app_dir.name.lower()
    check_name(name, registry)
    require_tools()
    root = images_dir(cache)
    root.mkdir(parents=True, exist_ok=True)
    tag = name.replace("/", "-")
    # one log per image name, rewritten by each build: it holds the last build's tools' output
    (root / "logs").mkdir(exist_ok=True)
    log_file = root / "logs" / f"{tag}.log"
    log_file.write_text("")
    steps = _Steps(log, log_file)
    steps.line(f"image {name} from {app_dir} (tools' output: {steps.log_file})")
    found = ensure_base(base, cache=cache, steps=steps)
    with tempfile.TemporaryDirectory(dir=root, prefix="build-") as tmp:
        work = Path(tmp)
        staging = work / "app"
        staging.mkdir()
        for rel in app_files(app_dir):
            src, dst = app_dir / rel, staging / rel
            if src.is_dir() and not src.is_symlink():
                dst.mkdir()
            else:
                shutil.copy2(src, dst, follow_symlinks=False)
        python = shutil.which(f"python{found.python}")
        if python is not None:
            steps.run(compile_argv(python, staging), "compiling the app's bytecode")
        else:
            steps.line(f"no python{found.python} here: the image gets no precompiled bytecode")
        write_app_layer(staging, work / "app.tar")
        layers = [(work / "app.tar", "the app under /app")]
        return _assemble(
            found, layers, config, registry=registry, name=name, steps=steps, work=work
        )


def _assemble(
    found: Base,
    layers: Sequence[tuple[Path, str]],
    config: ImageConfig,
    *,
    registry: str,
    name: str,
    steps: _Steps,
    work: Path,
) -> str:
    """The cached base plus ``layers`` (tar, history line) and ``config``, pushed to
    ``registry``: returns ``REGISTRY/NAME@sha256:<digest>``. ``work`` is scratch space."""
    tag = name.replace("/", "-")
    layout = work / "oci"
    # blobs are content-addressed and never rewritten: hard links share the cached base
    shutil.copytree(found.layout, layout, copy_function=os.link)
    current = BASE_TAG
    for tar, created_by in layers:
        steps.run(
            add_layer_argv(layout, current, tar, created_by, new_tag=tag),
            f"adding the layer {created_by!r} (umoci)",
        )
        current = tag
    steps.run(umoci_config_argv(layout, tag, config), "the image config (umoci)")
    digest = _manifest_digest(layout, tag)
    steps.line(f"push to {registry}/{name} ({digest[:19]})")
    digest_file = work / "digest"
    steps.run(
        skopeo_push_argv(layout, tag, f"{registry}/{name}:build-{digest[7:19]}", digest_file),
        f"pushing to {registry} (skopeo)",
    )
    pushed = digest_file.read_text().strip()
    if pushed != digest:
        raise DevClusterError(
            f"the registry holds {pushed}, not the digest built here ({digest}); "
            f"see {steps.log_file}"
        )
    ref = f"{registry}/{name}@{digest}"
    steps.line(f"done: {ref}")
    return ref


# ------------------------------------------------------------- a Python project (the operator)

SITE_PACKAGES = "usr/local/lib/python{version}/dist-packages"
"""Where the project and its dependencies go: on Debian's python3 ``sys.path`` already, so the
image needs no virtualenv and no PYTHONPATH (``/usr/lib/python3/dist-packages`` is Debian's own)."""
DEPS_RECIPE_VERSION = 1
"""Bump when the dependency layer's recipe changes in a way its key does not capture."""


@dataclass(frozen=True)
class Project:
    """A Python project as an image: its locked dependencies, its packages, its commands."""

    requirements: Path
    """A hash-pinned lock (pip-compile --generate-hashes): installed with --require-hashes."""
    packages: tuple[Path, ...]
    """Package directories copied into site-packages (``operator/pythonapp_operator``)."""
    scripts: tuple[tuple[str, str], ...] = ()
    """Console scripts as ``[project.scripts]`` declares them: (name, ``module:function``),
    written to ``/usr/local/bin`` for the image's python3."""


def pip_install_argv(python: str, requirements: Path, target: Path) -> list[str]:
    """pip installing the lock into ``target``: hashes required, wheels only (nothing is
    compiled here, so no toolchain and no sdist's code runs), no dependency not in the lock,
    no bytecode (compiled afterwards for the image's paths)."""
    return [
        python,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--require-hashes",
        "--only-binary=:all:",
        "--no-deps",
        "--no-compile",
        f"--target={target}",
        "-r",
        str(requirements),
    ]


def script_text(entry: str) -> str:
    """A console script as pip writes one, for the image's interpreter."""
    module, _, func = entry.partition(":")
    return f"#!/usr/bin/python3\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n"


def _project_python(version: str) -> str:
    """An interpreter of the image's version to run pip and compileall: wheels are chosen for
    it, so it must be the same minor version (3.11 on bookworm)."""
    import sys  # noqa: PLC0415

    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if found is None:
        raise DevClusterError(
            f"building a Python project's image needs python{version} here (the image's "
            f"version, for pip's wheels and the bytecode); install it (`apt-get install "
            f"python{version}`)"
        )
    return found


def _deps_layer(project: Project, found: Base, python: str, root: Path, steps: _Steps) -> Path:
    """The locked dependencies as a layer tar, cached by the lock's hash (and the image's
    python version): a code change reuses it, a lock change builds a new one."""
    lock = project.requirements.read_bytes()
    key = hashlib.sha256(
        json.dumps(
            {"recipe": DEPS_RECIPE_VERSION, "python": found.python, "lock": lock.hex()}
        ).encode()
    ).hexdigest()[:16]
    cached = root / f"deps-{key}.tar"
    with _locked(root / "deps.lock"):
        if cached.exists():
            steps.line(f"dependencies: cached layer {cached.name} (the lock is unchanged)")
            return cached
        steps.line(f"dependencies: pip install --require-hashes -r {project.requirements.name}")
        with tempfile.TemporaryDirectory(dir=root, prefix="deps-") as tmp:
            work = Path(tmp)
            site = work / "usr" / SITE_PACKAGES.format(version=found.python).removeprefix("usr/")
            steps.run(pip_install_argv(python, project.requirements, site), "pip install")
            # console scripts of the dependencies name this host's interpreter: none is needed
            shutil.rmtree(site / "bin", ignore_errors=True)
            steps.run(
                compile_argv(python, work / "usr", "/usr"), "compiling the dependencies' bytecode"
            )
            for old in root.glob("deps-*.tar"):  # an older lock's layer: nothing builds on it
                old.unlink()
            write_app_layer(work / "usr", work / "deps.tar", prefix="usr")
            (work / "deps.tar").rename(cached)
    return cached


def build_project(
    project: Project,
    registry: str,
    name: str,
    config: ImageConfig,
    *,
    base: BaseSpec = BaseSpec(),
    cache: Path | None = None,
    log: Log = print,
) -> str:
    """A Python project's image: the base, a layer of its locked dependencies (cached), a layer
    of its packages and scripts, ``config``; pushed to ``registry``, returned by digest."""
    check_name(name, registry)
    require_tools()
    if not project.requirements.is_file():
        raise DevClusterError(f"{project.requirements} does not exist")
    for package in project.packages:
        if not (package / "__init__.py").is_file():
            raise DevClusterError(f"{package} is not a Python package (no __init__.py)")
    root = images_dir(cache)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    log_file = root / "logs" / f"{name.replace('/', '-')}.log"
    log_file.write_text("")
    steps = _Steps(log, log_file)
    steps.line(f"image {name} (tools' output: {steps.log_file})")
    found = ensure_base(base, cache=cache, steps=steps)
    python = _project_python(found.python)
    deps = _deps_layer(project, found, python, root, steps)
    with tempfile.TemporaryDirectory(dir=root, prefix="build-") as tmp:
        work = Path(tmp)
        usr = work / "usr"
        site = usr / SITE_PACKAGES.format(version=found.python).removeprefix("usr/")
        for package in project.packages:
            pkg = package.resolve()
            dest = site / pkg.name
            dest.mkdir(parents=True)
            for rel in app_files(pkg):
                src, dst = pkg / rel, dest / rel
                if src.is_dir() and not src.is_symlink():
                    dst.mkdir()
                else:
                    shutil.copy2(src, dst, follow_symlinks=False)
        steps.run(compile_argv(python, usr, "/usr"), "compiling the project's bytecode")
        bindir = usr / "local" / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        for script, entry in project.scripts:
            (bindir / script).write_text(script_text(entry))
            (bindir / script).chmod(0o755)
        write_app_layer(usr, work / "project.tar", prefix="usr")
        steps.line(f"project layer: {', '.join(p.name for p in project.packages)}")
        return _assemble(
            found,
            [
                (deps, f"pip install --require-hashes -r {project.requirements.name}"),
                (work / "project.tar", "the project's packages and scripts"),
            ],
            config,
            registry=registry,
            name=name,
            steps=steps,
            work=work,
        )
