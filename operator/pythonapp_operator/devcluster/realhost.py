"""What the real node changes on the host outside its state dir, recorded and put back.

A kubelet and containerd are not as tidy as the control plane's processes: whatever their
configuration says, the kubelet sets three kernel sysctls (``vm.overcommit_memory=1``,
``kernel.panic=10``, ``kernel.panic_on_oops=1``; it has no warn-only mode) and writes
``/var/lib/kubelet`` (device plugins), containerd writes ``/run/containerd`` (shim sockets, fifos,
runc state) and ``/run/netns`` (pod network namespaces), the CNI library ``/var/lib/cni``. The
kubelet also needs its cgroup root under every cgroup controller and a bridge whose address
is its node IP. This module makes those changes and undoes them, so ``dev down`` leaves the
host as it found it.

The sysctls and shared paths are host-wide, and two clusters (the test session's and a
developer's) may each run a real node: the first to claim the host records the original values
and which paths existed, in ``/run`` (a reboot clears both the record and the changes); the last
to release it restores them. Cgroup dirs and bridges are per cluster and named after its state
dir, so they never collide.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import DevClusterError

SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
"""The sysctls the kubelet sets (paths under /proc/sys)."""
SHARED_PATHS = (
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/run/containerd",
    "/run/netns",
    "/var/log/containers",
)
"""Host paths the kubelet, containerd and CNI write whatever their configuration says."""
RECORD_DIR = Path("/run/pythonapp-operator")
CGROUP_ROOT = Path("/sys/fs/cgroup")


# ------------------------------------------------------------------ host-wide record (shared)


@contextlib.contextmanager
def _record_locked(record_dir: Path) -> Iterator[Path]:
    record_dir.mkdir(parents=True, exist_ok=True)
    with (record_dir / "realnode-host.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield record_dir / "realnode-host.json"
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_sysctls(proc_sys: Path = Path("/proc/sys")) -> dict[str, str]:
    """The current values of :data:`SYSCTLS`."""
    return {k: (proc_sys / k).read_text().strip() for k in SYSCTLS}


def claim(
    user: str,
    record_dir: Path = RECORD_DIR,
    paths: tuple[str, ...] = SHARED_PATHS,
    proc_sys: Path = Path("/proc/sys"),
) -> None:
    """Count ``user`` (a state dir) among the real nodes on this host; the first records the
    sysctls and which shared paths exist, before any kubelet runs."""
    with _record_locked(record_dir) as path:
        try:
            record = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            record = {
                "sysctls": read_sysctls(proc_sys),
                "existed": {p: os.path.lexists(p) for p in paths},
                "users": [],
            }
        if user not in record["users"]:
            record["users"].append(user)
        path.write_text(json.dumps(record, indent=2) + "\n")


def release(
    user: str, record_dir: Path = RECORD_DIR, proc_sys: Path = Path("/proc/sys")
) -> list[str]:
    """Stop counting ``user``; the last one restores the sysctls and removes the shared paths
    that did not exist before. Returns what was restored or removed (for the log)."""
    done: list[str] = []
    with _record_locked(record_dir) as path:
        try:
            record = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return done
        record["users"] = [u for u in record["users"] if u != user]
        if record["users"]:
            path.write_text(json.dumps(record, indent=2) + "\n")
            return done
        for key, value in record["sysctls"].items():
            target = proc_sys / key
            if target.read_text().strip() != value:
                target.write_text(value)
                done.append(f"{key.replace('/', '.')}={value}")
        for p, existed in record["existed"].items():
            if not existed and os.path.lexists(p):
                unmount_under(Path(p))
                shutil.rmtree(p, ignore_errors=True)
                done.append(f"removed {p}")
        path.unlink()
    with contextlib.suppress(OSError):
        (record_dir / "realnode-host.lock").unlink()
        record_dir.rmdir()
    return done


# ------------------------------------------------------------------ mounts


def _unescape(field: str) -> str:
    """/proc/self/mountinfo escapes space, tab, newline and backslash as octal."""
    return (
        field.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or under ``path``, deepest first (the order to unmount them in)."""
    root = str(path)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point == root or point.startswith(root.rstrip("/") + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: (len(p.parts), str(p)), reverse=True)


def unmount_under(path: Path) -> None:
    """Unmount everything at or under ``path`` (the kubelet bind-mounts its root dir onto
    itself and mounts pod volumes below it; containerd mounts container root filesystems)."""
    for _ in range(3):
        points = mounts_under(path)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


# ------------------------------------------------------------------ cgroups (per cluster)


def cgroup_hierarchies(cgroup_fs: Path = CGROUP_ROOT) -> list[Path]:
    """The mounted hierarchies: one dir per v1 controller (cpu, memory, ...) and, on a hybrid
    machine, the v2 hierarchy beside them (``unified``: runc creates the pods' paths there
    too); or the unified v2 root itself."""
    found: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype = right.split()[0] if right else ""
        point = Path(_unescape(left.split()[4]))
        if fstype == "cgroup2" and point == cgroup_fs:
            return [point]
        if fstype in ("cgroup", "cgroup2") and point.parent == cgroup_fs:
            found.append(point)
    return sorted(set(found))


def make_cgroup(name: str) -> None:
    """``/<name>`` under every hierarchy (the kubelet's ``cgroupRoot``); cpuset needs its cpus
    and mems copied from the parent before a task may join it."""
    for h in cgroup_hierarchies():
        d = h / name
        d.mkdir(exist_ok=True)
        for f in ("cpuset.cpus", "cpuset.mems"):
            if (d / f).exists() and not (d / f).read_text().strip():
                (d / f).write_text((h / f).read_text())


def cgroup_pids(name: str) -> set[int]:
    """Every process in the cgroup tree ``/<name>`` (pods' processes), any hierarchy."""
    pids: set[int] = set()
    for h in cgroup_hierarchies():
        root = h / name
        if not root.is_dir():
            continue
        # the kubelet may be removing pod cgroups meanwhile: a dir vanishing mid-walk is fine
        for dirpath, _dirs, _files in os.walk(root):
            with contextlib.suppress(OSError):
                pids.update(int(x) for x in Path(dirpath, "cgroup.procs").read_text().split())
    return pids


def remove_cgroup(name: str, wait: float = 10.0) -> None:
    """Remove ``/<name>`` and its children, deepest first (the processes must be gone)."""
    deadline = time.monotonic() + wait
    for h in cgroup_hierarchies():
        root = h / name
        if not root.is_dir():
            continue
        dirs = sorted(
            (Path(d) for d, _subdirs, _files in os.walk(root) if Path(d) != root),
            key=lambda p: -len(p.parts),
        )
        for d in [*dirs, root]:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if time.monotonic() >= deadline:
                        raise DevClusterError(f"cannot remove cgroup {d}: {e}") from None
                    time.sleep(0.1)


# ------------------------------------------------------------------ the bridge (per cluster)


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    ip = shutil.which("ip")
    if ip is None:
        raise DevClusterError("the real node needs `ip` (Debian package iproute2)")
    return subprocess.run([ip, *args], capture_output=True, text=True, check=False)


def host_networks() -> list[ipaddress.IPv4Network]:
    """Networks of the host's IPv4 addresses and routes, to pick a pod subnet that collides
    with none."""
    nets: list[ipaddress.IPv4Network] = []
    out = _ip("-j", "-4", "addr").stdout or "[]"
    for link in json.loads(out):
        for a in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    for r in json.loads(_ip("-j", "-4", "route").stdout or "[]"):
        dst = r.get("dst", "")
        if dst and dst != "default":
            nets.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    return nets


def pick_subnet(seed: int, taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """A free /24 in 10.250.0.0/16, starting from ``seed`` (the state dir's hash) so one
    cluster gets the same subnet each time."""
    for i in range(256):
        net = ipaddress.IPv4Network(f"10.250.{(seed + i) % 256}.0/24")
        if not any(net.overlaps(t) for t in taken):
            return net
    raise DevClusterError("no free /24 in 10.250.0.0/16 for the real node's pod network")


def bridge_exists(name: str) -> bool:
    return _ip("link", "show", "dev", name).returncode == 0


def ensure_bridge(name: str, gateway: str, prefix: int) -> None:
    """The pod bridge, with the gateway address (the node IP) on it and up. Idempotent."""
    if not bridge_exists(name):
        r = _ip("link", "add", "name", name, "type", "bridge")
        if r.returncode != 0:
            raise DevClusterError(f"creating bridge {name}: {r.stderr.strip()}")
    addrs = json.loads(_ip("-j", "-4", "addr", "show", "dev", name).stdout or "[]")
    have = {a["local"] for link in addrs for a in link.get("addr_info", [])}
    if gateway not in have:
        r = _ip("addr", "add", f"{gateway}/{prefix}", "dev", name)
        if r.returncode != 0:
            raise DevClusterError(f"adding {gateway} to bridge {name}: {r.stderr.strip()}")
    _ip("link", "set", name, "up")


def delete_bridge(name: str) -> None:
    if bridge_exists(name):
        _ip("link", "del", name)
