"""What another writer did to weaken a child's hardening: a pure check of (rendered, live).

Why a check of its own: drift correction (:func:`.compare.needs_apply`) asks whether every
field the operator renders is still in place, and server-side apply never removes a field
another manager set. So additions go unseen by both: ``ingress: [{}]`` (allow all) added to a
worker's deny-all NetworkPolicy, an allow-all rule appended to a web app's, a ``hostPath``
volume or ``hostNetwork: true`` added to the pod template. This module looks at what is there
instead, with two yardsticks:

- the Pod Security ``restricted`` profile (the rules of k8s.io/pod-security-admission v0.36,
  baseline included), applied to the live pod template and to EVERY container in it, also the
  ones others injected (init and ephemeral containers too): host namespaces, volume types,
  privileged, allowPrivilegeEscalation, capabilities, runAsNonRoot, runAsUser 0, seccomp,
  procMount, sysctls, host ports, host probes and hooks, AppArmor, SELinux, Windows
  HostProcess. (Pods with ``hostUsers: false`` get the profile's relaxation of the root
  checks, as the API server gives it.)
- what the operator promises beyond it: a read-only root filesystem for the containers it
  renders, no service-account token mount turned on, and a NetworkPolicy whose spec
  (podSelector, policyTypes, ingress, egress) is exactly the rendered one: a policy that lets
  in more than rendered must never stay unseen.

Each :class:`Finding` names the field by path (``spec.template.spec.volumes[name=x].hostPath``,
``spec.ingress``) and says whether a forced apply puts it back (``restore``): true exactly when
the rendered manifest holds that path, so the operator's apply sets it (a scalar, or an atomic
list such as a NetworkPolicy's ``ingress``). The rest (an added volume or container, an entry
of a list keyed by name that only others own) would be a fight with another writer, such as a
sidecar injector: the app reports it instead (``HardeningDrift``). The reconcile re-checks the
apply's answer, so a field that a forced apply did not in fact remove is reported, never
re-applied in a loop.

Pure and cheap: a walk over one object's pod template (a Deployment's or a CronJob's), run
only when the child's cached content changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..render import POD_TEMPLATE_PATHS

Obj = dict[str, Any]

#: a field; a key of a string map such as labels, as ``(key,)``; or one item of a list of
#: maps, as ``(list field, item key, item value)``
Segment = str | tuple[str] | tuple[str, str, str]

#: volume sources Pod Security ``restricted`` allows (check_restrictedVolumes.go)
ALLOWED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
#: sysctls Pod Security ``baseline`` allows (check_sysctls.go, 1.32)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
NETPOL_FIELDS = ("policyTypes", "ingress", "egress")
#: where each workload kind holds its pod template (:data:`..render.POD_TEMPLATE_PATHS`)
TEMPLATES: dict[str, tuple[Segment, ...]] = {
    kind: tuple(path) for kind, path in POD_TEMPLATE_PATHS.items()
}


@dataclass(frozen=True, order=True)
class Finding:
    """One weakened field: where, what rule it breaks, and whether a forced apply restores it."""

    path: str
    message: str
    restore: bool

    def __str__(self) -> str:
        return f"{self.path} ({self.message})"


def check(desired: Obj, live: Obj) -> list[Finding]:
    """Every hardening violation in ``live`` (the object as stored) against ``desired`` (the
    rendered manifest), sorted by path; empty when nothing is weakened."""
    kind = desired.get("kind")
    found: list[tuple[tuple[Segment, ...], str]] = []
    if kind in TEMPLATES:
        found = list(_workload(desired, live, TEMPLATES[kind]))
    elif kind == "NetworkPolicy":
        found = list(_network_policy(desired, live))
    elif kind == "ServiceAccount":
        found = list(_automount(desired, live, ()))
    unique = {
        Finding(_path(segments), message, _rendered(desired, segments))
        for segments, message in found
    }
    return sorted(unique)


def _path(segments: tuple[Segment, ...]) -> str:
    out = ""
    for seg in segments:
        if isinstance(seg, str):
            out += f"{'.' if out else ''}{seg}"
        elif len(seg) == 1:
            out += f"[{seg[0]}]"
        else:
            field, key, value = seg
            out += f"{'.' if out else ''}{field}[{key}={value}]"
    return out


_ABSENT = object()


def _get(obj: Any, segments: tuple[Segment, ...]) -> Any:
    """The value at ``segments``, or _ABSENT."""
    node = obj
    for seg in segments:
        if isinstance(seg, str):
            node = node.get(seg, _ABSENT) if isinstance(node, dict) else _ABSENT
        elif len(seg) == 1:
            node = node.get(seg[0], _ABSENT) if isinstance(node, dict) else _ABSENT
        else:
            field, key, value = seg
            items = node.get(field) if isinstance(node, dict) else None
            node = next(
                (i for i in _list(items) if isinstance(i, dict) and str(i.get(key)) == value),
                _ABSENT,
            )
        if node is _ABSENT:
            return _ABSENT
    return node


def _rendered(desired: Obj, segments: tuple[Segment, ...]) -> bool:
    """The operator renders this very field, so its forced apply sets it back."""
    return _get(desired, segments) is not _ABSENT


def _map(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


Found = Iterator[tuple[tuple[Segment, ...], str]]


def _automount(desired: Obj, live: Obj, at: tuple[Segment, ...]) -> Found:
    want = _get(desired, (*at, "automountServiceAccountToken"))
    if _get(live, (*at, "automountServiceAccountToken")) is True and want is not True:
        yield (*at, "automountServiceAccountToken"), "the service-account token is mounted"


def _workload(desired: Obj, live: Obj, template: tuple[Segment, ...]) -> Found:
    """A Deployment's or CronJob's pod template (``template``: where the kind holds it)."""
    pod_at = (*template, "spec")
    pod = _map(_get(live, pod_at))
    annotations = _map(_get(live, (*template, "metadata", "annotations")))
    yield from _automount(desired, live, pod_at)
    yield from _pod(pod, pod_at)
    for key, value in annotations.items():
        if key.startswith(APPARMOR_ANNOTATION) and not (
            value in ("", "runtime/default") or str(value).startswith("localhost/")
        ):
            yield (
                (*template, "metadata", "annotations", (key,)),
                f"AppArmor profile {value!r} is not allowed",
            )
    ours = {c.get("name") for c in _list(_get(desired, (*pod_at, "containers")))}
    for field in CONTAINER_LISTS:
        for container in _list(pod.get(field)):
            if not isinstance(container, dict):
                continue
            at = (*pod_at, (field, "name", str(container.get("name"))))
            yield from _container(pod, container, at)
            sc = _map(container.get("securityContext"))
            rendered = field == "containers" and container.get("name") in ours
            if rendered and sc.get("readOnlyRootFilesystem") is not True:
                where = (*at, "securityContext", "readOnlyRootFilesystem")
                yield where, "the root filesystem must be read-only"


def _relaxed(pod: Obj) -> bool:
    """A pod in a user namespace: restricted relaxes its root checks (1.35)."""
    return pod.get("hostUsers") is False


def _pod(pod: Obj, pod_at: tuple[Segment, ...]) -> Found:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field) is True:
            yield (*pod_at, field), "host namespaces are not allowed"
    sc = _map(pod.get("securityContext"))
    at = (*pod_at, "securityContext")
    if sc.get("runAsNonRoot") is False and not _relaxed(pod):
        yield (*at, "runAsNonRoot"), "must not be false"
    if sc.get("runAsUser") == 0 and not _relaxed(pod):
        yield (*at, "runAsUser"), "must not be 0 (root)"
    seccomp = _map(sc.get("seccompProfile")).get("type")
    if seccomp is not None and seccomp not in SECCOMP_TYPES:
        yield (*at, "seccompProfile", "type"), f"seccomp profile {seccomp!r} is not allowed"
    yield from _common(sc, at)
    for sysctl in _list(sc.get("sysctls")):
        name = str(_map(sysctl).get("name"))
        if name not in SAFE_SYSCTLS:
            yield (*at, ("sysctls", "name", name)), "unsafe sysctl"
    for item in _list(pod.get("volumes")):
        volume = _map(item)
        for source in volume:
            if source != "name" and source not in ALLOWED_VOLUMES:
                yield (
                    (*pod_at, ("volumes", "name", str(volume.get("name"))), source),
                    f"{source} volumes are not allowed",
                )


def _common(sc: Obj, at: tuple[Segment, ...]) -> Found:
    """Rules that read the same on a pod's and a container's security context."""
    selinux = _map(sc.get("seLinuxOptions"))
    if selinux.get("type", "") not in SELINUX_TYPES:
        yield (*at, "seLinuxOptions", "type"), "SELinux type is not allowed"
    for field in ("user", "role"):
        if selinux.get(field):
            yield (*at, "seLinuxOptions", field), f"SELinux {field} must not be set"
    apparmor = _map(sc.get("appArmorProfile")).get("type")
    if apparmor is not None and apparmor not in APPARMOR_TYPES:
        yield (*at, "appArmorProfile", "type"), f"AppArmor profile {apparmor!r} is not allowed"
    if _map(sc.get("windowsOptions")).get("hostProcess") is True:
        yield (*at, "windowsOptions", "hostProcess"), "Windows HostProcess is not allowed"


def _container(pod: Obj, container: Obj, at: tuple[Segment, ...]) -> Found:
    sc = _map(container.get("securityContext"))
    pod_sc = _map(pod.get("securityContext"))
    sca = (*at, "securityContext")
    if sc.get("privileged") is True:
        yield (*sca, "privileged"), "privileged containers are not allowed"
    if sc.get("allowPrivilegeEscalation") is not False:
        yield (*sca, "allowPrivilegeEscalation"), "must be false"
    caps = _map(sc.get("capabilities"))
    if "ALL" not in _list(caps.get("drop")):
        yield (*sca, "capabilities", "drop"), "must drop ALL"
    added = [c for c in _list(caps.get("add")) if c != "NET_BIND_SERVICE"]
    if added:
        yield (*sca, "capabilities", "add"), f"adds {', '.join(map(str, added))}"
    if not _relaxed(pod):
        non_root = sc.get("runAsNonRoot")
        if non_root is False or (non_root is None and pod_sc.get("runAsNonRoot") is not True):
            yield (*sca, "runAsNonRoot"), "must be true here or on the pod"
        if sc.get("runAsUser") == 0:
            yield (*sca, "runAsUser"), "must not be 0 (root)"
    seccomp = _map(sc.get("seccompProfile")).get("type")
    if seccomp is not None and seccomp not in SECCOMP_TYPES:
        yield (*sca, "seccompProfile", "type"), f"seccomp profile {seccomp!r} is not allowed"
    elif seccomp is None and _map(pod_sc.get("seccompProfile")).get("type") not in SECCOMP_TYPES:
        yield (*sca, "seccompProfile", "type"), "must be RuntimeDefault here or on the pod"
    if sc.get("procMount") not in (None, "Default"):
        yield (*sca, "procMount"), "must be Default"
    yield from _common(sc, sca)
    for item in _list(container.get("ports")):
        port = _map(item)
        if port.get("hostPort"):
            where = ("ports", "containerPort", str(port.get("containerPort")))
            yield (*at, where, "hostPort"), "host ports are not allowed"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        yield from _hosts(_map(container.get(probe)), (*at, probe))
    lifecycle = _map(container.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        yield from _hosts(_map(lifecycle.get(hook)), (*at, "lifecycle", hook))


def _hosts(handler: Obj, at: tuple[Segment, ...]) -> Found:
    for field in ("httpGet", "tcpSocket"):
        if _map(handler.get(field)).get("host"):
            yield (*at, field, "host"), "probes and hooks must not name a host"


def normalised(value: Any) -> Any:
    """``value`` with empty lists, maps and nulls dropped from maps (the API server omits
    them); list items, ``{}`` (allow all) among them, are kept as they are."""
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items() if v is not None and v not in ([], {})}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    return value


def _network_policy(desired: Obj, live: Obj) -> Found:
    want, have = _map(desired.get("spec")), _map(live.get("spec"))
    for field in NETPOL_FIELDS:
        if normalised(want.get(field) or []) != normalised(have.get(field) or []):
            yield ("spec", field), "differs from the rendered policy"
    selector, rendered = _map(have.get("podSelector")), _map(want.get("podSelector"))
    labels, wanted = _map(selector.get("matchLabels")), _map(rendered.get("matchLabels"))
    for key in sorted(set(labels) | set(wanted)):
        if labels.get(key) != wanted.get(key):
            yield ("spec", "podSelector", "matchLabels", (key,)), "differs from the rendered policy"
    if normalised(selector.get("matchExpressions") or []) != normalised(
        rendered.get("matchExpressions") or []
    ):
        yield ("spec", "podSelector", "matchExpressions"), "differs from the rendered policy"
