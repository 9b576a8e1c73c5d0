"""Hypothesis strategies for PythonApp specs: valid ones, near-misses, and wild ones.

Built from the models in operator/pythonapp_operator/api/models.py: every field, its bounds and
the cross-field rules (unique env names, mount paths that neither repeat nor nest, limits at
least their requests, a grace period longer than the drain, workers without port or HTTP
probes). ``valid_specs`` draws only specs the contract accepts; ``near_misses`` changes one
thing in a valid spec so that the contract refuses it, and says which field should be named;
``wild_specs`` puts arbitrary JSON values at arbitrary places (no verdict is predicted: the
models and the API server must simply agree).

Shared by the unit tests (models, reconcile) and the integration tests (the API server).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from pythonapp_operator.api.models import quantity_value

Spec = dict[str, Any]
Draw = Callable[[st.SearchStrategy[Any]], Any]

HEX = "0123456789abcdef"

# -- scalars -----------------------------------------------------------------------------------

#: any Unicode text that can travel as JSON/UTF-8 (no lone surrogates)
unicode_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)

_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_component = st.builds(
    lambda first, rest: first + "".join(s + a for s, a in rest),
    _alnum,
    st.lists(st.tuples(st.sampled_from([".", "_", "__", "-"]), _alnum), max_size=2),
)
_registry = st.sampled_from(
    [None, "ghcr.io", "docker.io", "localhost", "localhost:5000", "r.example.com:8443"]
)
_tag = st.one_of(
    st.none(),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}", fullmatch=True).filter(
        lambda t: t != "latest"
    ),
)
digests = st.text(HEX, min_size=64, max_size=64).map(lambda h: "sha256:" + h)


@st.composite
def images(draw: Draw) -> str:
    """``[registry/]repository[:tag]@sha256:<64 hex>``, never ``latest``."""
    registry = draw(_registry)
    repository = "/".join(draw(st.lists(_component, min_size=1, max_size=3)))
    tag = draw(_tag)
    name = f"{registry}/{repository}" if registry else repository
    return name + (f":{tag}" if tag else "") + "@" + draw(digests)


env_names = st.from_regex(r"[-._a-zA-Z][-._a-zA-Z0-9]{0,15}", fullmatch=True)
secret_names = st.from_regex(
    r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,4}[a-z0-9])?)?", fullmatch=True
)
#: a key as Secret keys may be named (a volume file name and a secretKeyRef key)
secret_keys = st.from_regex(r"[-_a-zA-Z0-9][-._a-zA-Z0-9]{0,15}", fullmatch=True)
#: a first path component that is neither /tmp, /run nor /etc (the default mounts live under
#: /run/secrets and /etc/config)
_top = st.from_regex(r"[a-zA-Z0-9_][-a-zA-Z0-9_.]{0,8}", fullmatch=True).filter(
    lambda c: c not in ("tmp", "run", "etc")
)
_sub = st.one_of(
    st.from_regex(r"[a-zA-Z0-9_][-a-zA-Z0-9_.]{0,8}", fullmatch=True),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="/"), min_size=1)
    .filter(lambda c: not c.startswith("."))
    .map(lambda c: c[:12]),
)
http_paths = st.builds(
    lambda parts, query: "/" + "/".join(parts) + query,
    st.lists(st.from_regex(r"[a-zA-Z0-9_.~-]{1,8}", fullmatch=True), max_size=3),
    st.sampled_from(["", "?probe=1", "?a=b&c=d"]),
)

_UNITS = ["", "m", "k", "Ki", "M", "Mi", "G", "Gi"]


@st.composite
def quantities(draw: Draw) -> str | int:
    """A Kubernetes quantity, as a string (``250m``, ``1Gi``, ``1e3``) or a JSON integer."""
    number = draw(st.integers(0, 4096))
    form = draw(st.sampled_from(["unit", "unit", "unit", "int", "exp", "decimal"]))
    if form == "int":
        return number
    if form == "exp":
        return f"{number}e{draw(st.integers(0, 3))}"
    if form == "decimal":
        return f"{number}.{draw(st.integers(0, 99))}{draw(st.sampled_from(['', 'Mi', 'Gi']))}"
    return f"{number}{draw(st.sampled_from(_UNITS))}"


def qvalue(q: str | int) -> Any:
    return quantity_value(q)


def _bytes(q: str | int) -> bool:
    value = qvalue(q)
    return bool(value == value.to_integral_value() and value < 2**40)


#: a quantity of bytes (memory, storage): a whole number of them, below 1Ti
byte_quantities = quantities().filter(_bytes)


@st.composite
def resources(draw: Draw) -> Spec:
    """requests/limits with every limit at least its request; limits.memory always set."""
    requests: Spec = {}
    limits: Spec = {}
    for resource in ("cpu", "memory", "ephemeral-storage"):
        amounts = quantities() if resource == "cpu" else byte_quantities
        pair = sorted(draw(st.lists(amounts, min_size=2, max_size=2)), key=qvalue)
        want_request = draw(st.booleans())
        want_limit = resource == "memory" or draw(st.booleans())
        if want_request:
            requests[resource] = pair[0]
        if want_limit:
            limits[resource] = pair[1]
    out: Spec = {"limits": limits}
    if requests or draw(st.booleans()):
        out["requests"] = requests
    return out


@st.composite
def probes(draw: Draw, worker: bool) -> Spec:
    out: Spec = {}
    for kind in ("liveness", "readiness", "startup"):
        if not draw(st.booleans()):
            continue
        probe: Spec = {}
        handler = "command" if worker else draw(st.sampled_from(["path", "command", "none"]))
        if handler == "path":
            probe["path"] = draw(http_paths)
        elif handler == "command":
            probe["command"] = draw(st.lists(unicode_text, min_size=1, max_size=3))
        period = draw(st.one_of(st.none(), st.integers(1, 3600)))
        if period is not None:
            probe["periodSeconds"] = period
        timeout = draw(st.one_of(st.none(), st.integers(1, period or 3600)))
        if timeout is not None:
            probe["timeoutSeconds"] = timeout
        for field, low, high in (("initialDelaySeconds", 0, 3600), ("failureThreshold", 1, 1000)):
            if draw(st.booleans()):
                probe[field] = draw(st.integers(low, high))
        out[kind] = probe
    return out


@st.composite
def secrets_and_env(
    draw: Draw, max_env: int = 8, max_secrets: int = 4, max_config: int = 3
) -> tuple[list[Spec], ...]:
    """(env, secrets, config): env names unique across all three; mount paths neither equal
    nor nested, across secrets and config."""
    names = draw(st.lists(env_names, unique=True, max_size=max_env + 4))
    cut = draw(st.integers(0, len(names)))
    env = [
        {"name": n, "value": draw(unicode_text)} if draw(st.booleans()) else {"name": n}
        for n in names[:cut]
    ]
    spare = names[cut:]
    secret_list = draw(st.lists(secret_names, unique=True, max_size=max_secrets))
    config_list = draw(st.lists(secret_names, unique=True, max_size=max_config))
    count = len(secret_list) + len(config_list)
    tops = draw(st.lists(_top, unique=True, min_size=count, max_size=count))
    refs: list[list[Spec]] = [[], []]
    for index, (name, top) in enumerate(zip([*secret_list, *config_list], tops, strict=True)):
        ref: Spec = {"name": name}
        if draw(st.booleans()):  # an explicit mount path under its own top directory
            ref["mountPath"] = "/" + "/".join([top, *draw(st.lists(_sub, max_size=2))])
        take = draw(st.integers(0, min(3, len(spare))))
        if take:
            ref["env"] = [{"name": n, "key": draw(secret_keys)} for n in spare[:take]]
            spare = spare[take:]
        if draw(st.integers(0, 3)) == 0:
            ref["rotation"] = draw(st.sampled_from(["restart", "none"]))
        refs[index >= len(secret_list)].append(ref)
    return env, refs[0], refs[1]


@st.composite
def valid_specs(draw: Draw) -> Spec:
    """A spec the contract accepts, with fields present or left to their defaults at random."""
    worker = draw(st.booleans())
    spec: Spec = {"image": draw(images()), "resources": draw(resources())}
    if worker:
        spec["profile"] = "worker"
    elif draw(st.booleans()):
        spec["profile"] = "web"
    if draw(st.booleans()):
        spec["replicas"] = draw(st.integers(0, 1000))
    for field, size in (("command", 64), ("args", 256)):
        if draw(st.integers(0, 3)) == 0:
            spec[field] = draw(st.lists(unicode_text, max_size=min(size, 4)))
    if not worker and draw(st.booleans()):
        spec["port"] = draw(st.integers(1, 65535))
    env, secrets, config = draw(secrets_and_env())
    if env or draw(st.booleans()):
        spec["env"] = env
    if secrets or draw(st.booleans()):
        spec["secrets"] = secrets
    if config or draw(st.integers(0, 3)) == 0:
        spec["config"] = config
    if draw(st.integers(0, 2)) == 0:
        pulls = draw(st.lists(secret_names, unique=True, max_size=4))
        spec["imagePullSecrets"] = [{"name": n} for n in pulls]
    if draw(st.booleans()):
        spec["probes"] = draw(probes(worker))
    prestop = draw(st.one_of(st.none(), st.integers(0, 600)))
    if prestop is not None:
        spec["preStopSleepSeconds"] = prestop
    effective = prestop if prestop is not None else (0 if worker else 5)
    if draw(st.booleans()) or effective >= 30:
        low = effective + 1 if effective > 0 else 0
        spec["terminationGracePeriodSeconds"] = draw(st.integers(low, max(low, 3600)))
    if draw(st.booleans()):
        spec["securityContext"] = {
            f: draw(st.integers(1, 2**31 - 1))
            for f in draw(
                st.lists(st.sampled_from(["runAsUser", "runAsGroup", "fsGroup"]), unique=True)
            )
        }
    if draw(st.booleans()):
        spec["automountServiceAccountToken"] = draw(st.booleans())
    if draw(st.booleans()):
        spec["tmpSizeLimit"] = draw(byte_quantities)
    if draw(st.integers(0, 3)) == 0:
        spec["autoscaling"] = draw(autoscalings())
    if draw(st.integers(0, 3)) == 0:
        spec["disruption"] = draw(disruptions())
    if draw(st.integers(0, 3)) == 0:
        spec["migrate"] = draw(migrations())
    if not worker and draw(st.integers(0, 3)) == 0:
        spec["expose"] = draw(exposes())
    return spec


_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
#: host names both route APIs take: DNS labels joined by dots, not all digits (an IP address)
hosts = (
    st.lists(_label, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda h: not set(h) <= set("0123456789."))
)
_segment = st.text("-abcXYZ019._~!$&()*+,;=:@", min_size=1, max_size=8).filter(
    lambda seg: seg not in (".", "..")
)
#: "/" or an absolute, normalised path of URL path characters
route_paths = st.one_of(
    st.just("/"), st.lists(_segment, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p))
)


@st.composite
def exposes(draw: Draw) -> Spec:
    """spec.expose: a host, maybe a path, a TLS Secret and a class."""
    out: Spec = {"host": draw(hosts)}
    if draw(st.booleans()):
        out["path"] = draw(route_paths)
    if draw(st.booleans()):
        out["tls"] = {"secretName": draw(secret_names)}
    if draw(st.booleans()):
        out["class"] = draw(_label)
    return out


@st.composite
def migrations(draw: Draw) -> Spec:
    """spec.migrate: a command, maybe args, a timeout and a retry count or their defaults."""
    words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
    out: Spec = {"command": draw(st.lists(words, min_size=1, max_size=4))}
    if draw(st.booleans()):
        out["args"] = draw(st.lists(words, max_size=4))
    if draw(st.booleans()):
        out["timeoutSeconds"] = draw(st.integers(1, 86400))
    if draw(st.booleans()):
        out["backoffLimit"] = draw(st.integers(0, 10))
    return out


@st.composite
def scaling_rules(draw: Draw) -> Spec:
    """autoscaling.behavior.scaleUp/scaleDown, any of its fields left out."""
    rules: Spec = {}
    if draw(st.booleans()):
        rules["stabilizationWindowSeconds"] = draw(st.integers(0, 3600))
    if draw(st.booleans()):
        rules["selectPolicy"] = draw(st.sampled_from(["Max", "Min", "Disabled"]))
    if draw(st.booleans()):
        rules["policies"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(["Pods", "Percent"]),
                        "value": st.integers(1, 100000),
                        "periodSeconds": st.integers(1, 1800),
                    }
                ),
                min_size=1,
                max_size=3,
            )
        )
    return rules


@st.composite
def autoscalings(draw: Draw) -> Spec:
    """spec.autoscaling: a range, targets or the default, a behavior or none."""
    low = draw(st.integers(1, 1000))
    out: Spec = {"minReplicas": low, "maxReplicas": draw(st.integers(low, 1000))}
    for field in ("targetCPUUtilizationPercentage", "targetMemoryUtilizationPercentage"):
        if draw(st.booleans()):
            out[field] = draw(st.integers(1, 1000))
    if draw(st.booleans()):
        out["behavior"] = {
            key: draw(scaling_rules())
            for key in draw(st.lists(st.sampled_from(["scaleUp", "scaleDown"]), unique=True))
        }
    return out


@st.composite
def disruptions(draw: Draw) -> Spec:
    """spec.disruption: on, off or by default, with a count or a percentage."""
    enabled = draw(st.sampled_from([None, True, False]))
    out: Spec = {} if enabled is None else {"enabled": enabled}
    if enabled is not False and draw(st.booleans()):
        out["maxUnavailable"] = draw(
            st.one_of(st.integers(1, 1000), st.integers(1, 100).map(lambda n: f"{n}%"))
        )
    return out


# -- scheduled apps (profile: cron) ------------------------------------------------------------

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
#: each field's bounds and names, as the API server's parser (robfig/cron) reads them
CRON_FIELDS = ((0, 59, []), (0, 23, []), (1, 31, []), (1, 12, MONTHS), (0, 6, DAYS))
MACROS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]


def _any_case(draw: Draw, word: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c for c in word)


@st.composite
def _cron_value(draw: Draw, lo: int, hi: int, names: list[str], *, valid: bool) -> tuple[int, str]:
    """(its number, as written): a number in bounds (or a little out, unless ``valid``),
    sometimes with a leading zero, or a name of the field (or of another, unless ``valid``)."""
    if names and draw(st.integers(0, 3)) == 0:
        pool = names if valid else names + DAYS + MONTHS
        name = draw(st.sampled_from(pool))
        number = names.index(name) + lo if name in names else -1
        return number, _any_case(draw, name)
    value = draw(st.integers(lo, hi) if valid else st.integers(max(0, lo - 1), hi + 2))
    return value, f"{value:02d}" if value < 10 and draw(st.booleans()) else str(value)


@st.composite
def _cron_item(draw: Draw, lo: int, hi: int, names: list[str], *, valid: bool) -> str:
    kind = draw(st.sampled_from(["*", "?", "value", "range"]))
    if kind in ("*", "?"):
        item = kind
    else:
        first, text = draw(_cron_value(lo, hi, names, valid=valid))
        item = text
        if kind == "range":
            second, other = draw(_cron_value(lo, hi, names, valid=valid))
            if valid and second < first:
                text, other = other, text  # in order: a-b with a <= b
            item = f"{text}-{other}"
    if draw(st.booleans()):
        item += "/" + str(draw(st.integers(1, 99) if valid else st.integers(0, 130)))
    return item


@st.composite
def schedules(draw: Draw, *, valid: bool = False) -> str:
    """A cron schedule: five fields of lists, ranges and steps, or a macro; unless ``valid``,
    also out-of-bounds values, reversed ranges, names in the wrong field, steps of 0, the
    wrong number of fields, time-zone prefixes and @every, and plain noise (about half of
    them: the other half are valid)."""
    valid = valid or draw(st.booleans())
    if draw(st.integers(0, 5)) == 0:
        pool = MACROS if valid else [*MACROS, "@every 1h", "@reboot", "@Hourly", "@ daily"]
        return str(draw(st.sampled_from(pool)))
    if not valid and draw(st.integers(0, 5)) == 0:
        noise = st.text("0123456789*/,-? @abcdefjmnorstuwyTZ=L#", max_size=30)
        return str(draw(noise))
    fields = list(CRON_FIELDS)
    if not valid and draw(st.integers(0, 6)) == 0:
        fields = fields[: draw(st.sampled_from([4, 6]))] + fields[:1]
    parts = [
        ",".join(draw(st.lists(_cron_item(lo, hi, names, valid=valid), min_size=1, max_size=3)))
        for lo, hi, names in fields[: 5 if valid else None]
    ]
    text = (" " * draw(st.integers(1, 2))).join(parts)
    if not valid and draw(st.integers(0, 8)) == 0:
        text = draw(st.sampled_from(["TZ=UTC ", "CRON_TZ=Europe/Berlin ", " "])) + text
    return text


time_zones = st.sampled_from(
    ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "Asia/Kolkata"]
)


@st.composite
def crons(draw: Draw) -> Spec:
    """spec.cron: a valid schedule and any of the run settings, or their defaults."""
    out: Spec = {"schedule": draw(schedules(valid=True))}
    optional = {
        "timeZone": time_zones,
        "concurrencyPolicy": st.sampled_from(["Allow", "Forbid", "Replace"]),
        "startingDeadlineSeconds": st.integers(10, 604800),
        "successfulJobsHistoryLimit": st.integers(0, 100),
        "failedJobsHistoryLimit": st.integers(0, 100),
        "suspend": st.booleans(),
        "activeDeadlineSeconds": st.integers(1, 2592000),
        "backoffLimit": st.integers(0, 10),
    }
    for field, values in optional.items():
        if draw(st.booleans()):
            out[field] = draw(values)
    return out


@st.composite
def valid_cron_specs(draw: Draw) -> Spec:
    """A scheduled app the contract accepts: a worker's spec without what a cron app refuses
    (replicas, port, probes, autoscaling, disruption, preStopSleepSeconds, migrate, and
    expose, which is for web apps)."""
    spec: Spec = draw(valid_specs())
    for field in (
        "expose",
        "replicas",
        "port",
        "probes",
        "autoscaling",
        "disruption",
        "preStopSleepSeconds",
        "migrate",
    ):
        spec.pop(field, None)
    spec["profile"] = "cron"
    spec["cron"] = draw(crons())
    return spec


# -- near-misses -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NearMiss:
    """A valid spec changed in one place; ``field`` is the spec field the refusal must name."""

    what: str
    spec: Spec
    field: str


Mutation = Callable[[Draw, Spec], tuple[str, str]]  # changes spec in place -> (what, field)
MUTATIONS: list[Mutation] = []


def mutation(fn: Mutation) -> Mutation:
    MUTATIONS.append(fn)
    return fn


def _name_tag(spec: Spec) -> str:
    return str(spec["image"]).split("@", 1)[0]


@mutation
def _image(draw: Draw, spec: Spec) -> tuple[str, str]:
    name_tag, _, digest = spec["image"].partition("@")
    hexpart = digest.removeprefix("sha256:")
    base = name_tag.rsplit(":", 1)[0] if ":" in name_tag.rsplit("/", 1)[-1] else name_tag
    choice = draw(
        st.sampled_from(
            [
                ("tag latest", f"{base}:latest@{digest}"),
                ("no digest", name_tag),
                ("uppercase hex", f"{name_tag}@sha256:{hexpart.upper()}"),
                ("short digest", f"{name_tag}@sha256:{hexpart[:63]}"),
                ("long digest", f"{name_tag}@sha256:{hexpart}0"),
                ("sha512", f"{name_tag}@sha512:{hexpart}{hexpart}"),
                ("uppercase repository", f"{name_tag.upper()}@{digest}"),
                ("empty", ""),
                ("spaces", f" {spec['image']}"),
                ("two digests", f"{spec['image']}@{digest}"),
            ]
        )
    )
    if choice[0] == "uppercase hex" and hexpart.upper() == hexpart:
        choice = ("no digest", name_tag)
    if choice[0] == "uppercase repository" and name_tag.upper() == name_tag:
        choice = ("empty", "")
    spec["image"] = choice[1]
    return f"image {choice[0]}", "image"


@mutation
def _port(draw: Draw, spec: Spec) -> tuple[str, str]:
    if draw(st.booleans()):
        spec["profile"] = "worker"
        spec["port"] = draw(st.integers(1, 65535))
        spec.pop("probes", None)
        spec.pop("preStopSleepSeconds", None)
        return "worker with a port", "port"
    spec.pop("profile", None)
    spec["port"] = draw(st.one_of(st.integers(-(2**40), 0), st.integers(65536, 2**40)))
    return "port out of range", "port"


@mutation
def _replicas(draw: Draw, spec: Spec) -> tuple[str, str]:
    spec["replicas"] = draw(st.one_of(st.integers(-(2**40), -1), st.integers(1001, 2**40)))
    return "replicas out of range", "replicas"


@mutation
def _limit_below_request(draw: Draw, spec: Spec) -> tuple[str, str]:
    resource = draw(st.sampled_from(["cpu", "memory", "ephemeral-storage"]))
    low = draw(st.integers(0, 1000))
    high = draw(st.integers(low + 1, 2000))
    unit = draw(st.sampled_from(["m", "Mi", "", "Ki"]))
    spec["resources"] = copy.deepcopy(spec["resources"])
    spec["resources"].setdefault("requests", {})[resource] = f"{high}{unit}"
    spec["resources"]["limits"][resource] = f"{low}{unit}"
    return f"limits.{resource} below its request", "resources"


@mutation
def _fractional_bytes(draw: Draw, spec: Spec) -> tuple[str, str]:
    amount = draw(st.sampled_from(["1m", "512m", "0.5", "1.5", "100500m", "1Ti", "1.0001Gi"]))
    if draw(st.booleans()):
        spec["tmpSizeLimit"] = amount
        return "fractional bytes in tmpSizeLimit", "tmpSizeLimit"
    spec["resources"] = {"limits": {"memory": amount}}
    return "fractional bytes of memory", "resources"


@mutation
def _no_memory_limit(draw: Draw, spec: Spec) -> tuple[str, str]:
    spec["resources"]["limits"].pop("memory")
    return "no memory limit", "resources"


@mutation
def _mounts(draw: Draw, spec: Spec) -> tuple[str, str]:
    secrets = spec.setdefault("secrets", [])
    first = draw(secret_names)
    others = {s["name"] for s in secrets}
    while first in others or first + "-b" in others:
        first += "x"
    path = "/srv/" + draw(st.from_regex(r"[a-z]{1,6}", fullmatch=True))
    kind, second_path = draw(
        st.sampled_from(
            [
                ("duplicate mount paths", path),
                ("nested mount paths", path + "/inner"),
                ("mount path over a default one", None),
            ]
        )
    )
    second = first + "-b"
    if second_path is None:
        secrets.append({"name": first})
        secrets.append({"name": second, "mountPath": f"/run/secrets/{first}"})
    else:
        secrets.append({"name": first, "mountPath": path})
        secrets.append({"name": second, "mountPath": second_path})
    return kind, "secrets"


@mutation
def _bad_path(draw: Draw, spec: Spec) -> tuple[str, str]:
    path = draw(
        st.sampled_from(
            ["relative/path", "/", "/etc/", "//etc", "/etc/./app", "/etc/../app", "/tmp", "/tmp/x"]
        )
    )
    spec.setdefault("secrets", []).insert(0, {"name": "zz-bad-path", "mountPath": path})
    return f"mount path {path!r}", "secrets"


@mutation
def _root(draw: Draw, spec: Spec) -> tuple[str, str]:
    field = draw(st.sampled_from(["runAsUser", "runAsGroup", "fsGroup"]))
    spec.setdefault("securityContext", {})[field] = draw(st.integers(-(2**31), 0))
    return f"{field} not above 0", "securityContext"


@mutation
def _unknown(draw: Draw, spec: Spec) -> tuple[str, str]:
    where = draw(st.sampled_from(["spec", "resources", "limits", "probe", "secret", "env"]))
    name = draw(st.sampled_from(["imagePullPolicy", "subPath", "gpu", "extra", "Image"]))
    if where == "spec":
        spec[name] = "x"
        return f"unknown field {name}", name
    if where == "resources":
        spec["resources"][name] = "1"
        return f"unknown resources.{name}", "resources"
    if where == "limits":
        spec["resources"]["limits"][name] = "1"
        return f"unknown limits.{name}", "resources"
    if where == "probe":
        spec.setdefault("probes", {}).setdefault("startup", {})[name] = 1
        return f"unknown probe field {name}", "probes"
    if where == "secret":
        spec["secrets"] = [{"name": "zz-unknown", name: "x"}]
        return f"unknown secret field {name}", "secrets"
    spec["env"] = [{"name": "ZZ_UNKNOWN", name: "x"}]
    spec.pop("secrets", None)
    return f"unknown env field {name}", "env"


@mutation
def _wrong_type(draw: Draw, spec: Spec) -> tuple[str, str]:
    field, value = draw(
        st.sampled_from(
            [
                ("replicas", "2"),
                ("replicas", True),
                ("replicas", 2.5),
                ("port", "8080"),
                ("automountServiceAccountToken", "true"),
                ("automountServiceAccountToken", 1),
                ("profile", 1),
                ("image", 1),
                ("command", "python app.py"),
                ("args", [1]),
                ("env", {"A": "b"}),
                ("secrets", "db"),
                ("resources", "small"),
                ("probes", []),
                ("terminationGracePeriodSeconds", "30"),
                ("securityContext", {"runAsUser": "10001"}),
                ("tmpSizeLimit", 0.5),
                ("tmpSizeLimit", True),
                ("tmpSizeLimit", [1]),
            ]
        )
    )
    if field == "port":
        spec.pop("profile", None)
    spec[field] = value
    return f"{field} as {type(value).__name__}", field


@mutation
def _worker_http_probe(draw: Draw, spec: Spec) -> tuple[str, str]:
    spec["profile"] = "worker"
    spec.pop("port", None)
    spec.pop("preStopSleepSeconds", None)
    kind = draw(st.sampled_from(["liveness", "readiness", "startup"]))
    spec["probes"] = {kind: {"path": draw(http_paths)}}
    return "worker with an HTTP probe", "probes"


@mutation
def _probe_rules(draw: Draw, spec: Spec) -> tuple[str, str]:
    spec.pop("profile", None)
    spec.pop("port", None)
    kind = draw(st.sampled_from(["liveness", "readiness", "startup"]))
    if draw(st.booleans()):
        spec["probes"] = {kind: {"path": "/health", "command": ["true"]}}
        return "probe with path and command", "probes"
    period = draw(st.integers(1, 3599))
    spec["probes"] = {
        kind: {"periodSeconds": period, "timeoutSeconds": draw(st.integers(period + 1, 3600))}
    }
    return "probe timeout above period", "probes"


@mutation
def _grace(draw: Draw, spec: Spec) -> tuple[str, str]:
    prestop = draw(st.integers(1, 600))
    spec["preStopSleepSeconds"] = prestop
    spec["terminationGracePeriodSeconds"] = draw(st.integers(0, prestop))
    return "grace period not above the drain", "terminationGracePeriodSeconds"


@mutation
def _env_names(draw: Draw, spec: Spec) -> tuple[str, str]:
    spec.pop("secrets", None)
    choice = draw(st.sampled_from(["digit first", "equals", "empty", "space", "duplicate"]))
    bad = {"digit first": "1A", "equals": "A=B", "empty": "", "space": "A B"}.get(choice, "DUP")
    env = [{"name": bad, "value": "1"}]
    if choice == "duplicate":
        env.append({"name": "DUP", "value": "2"})
    spec["env"] = env
    return f"env name {choice}", "env"


@mutation
def _env_shared_with_secret(draw: Draw, spec: Spec) -> tuple[str, str]:
    name = draw(env_names)
    spec["env"] = [{"name": name, "value": "1"}]
    spec["secrets"] = [{"name": "db", "env": [{"name": name, "key": "password"}]}]
    return "env name also in a secret's env", "secrets"


@mutation
def _secret_names(draw: Draw, spec: Spec) -> tuple[str, str]:
    bad = draw(st.sampled_from(["DB", "db_secret", "-db", "db.", "", "a" * 254]))
    spec["secrets"] = [{"name": bad}]
    return f"secret name {bad[:10]!r}", "secrets"


@mutation
def _duplicate_secret(draw: Draw, spec: Spec) -> tuple[str, str]:
    name = draw(secret_names)
    spec["secrets"] = [{"name": name, "mountPath": "/a"}, {"name": name, "mountPath": "/b"}]
    return "the same Secret twice", "secrets"


@mutation
def _too_many(draw: Draw, spec: Spec) -> tuple[str, str]:
    field = draw(st.sampled_from(["env", "secrets", "command", "args"]))
    if field == "env":
        spec["env"] = [{"name": f"V{i}", "value": "x"} for i in range(65)]
        spec.pop("secrets", None)
    elif field == "secrets":
        spec["secrets"] = [{"name": f"s{i}"} for i in range(17)]
    else:
        spec[field] = ["x"] * ({"command": 64, "args": 256}[field] + 1)
    return f"too many {field}", field


@mutation
def _bad_expose(draw: Draw, spec: Spec) -> tuple[str, str]:
    where = draw(st.sampled_from(["host", "path", "tls", "class", "worker"]))
    expose: Spec = {"host": "shop.example.com"}
    if where == "host":
        expose["host"] = draw(
            st.sampled_from(
                ["Shop.example.com", "*.example.com", "10.0.0.1", "a..b", "-a.b", "a.b:80", ""]
            )
        )
    elif where == "path":
        expose["path"] = draw(
            st.sampled_from(["api", "/api/", "//a", "/a/./b", "/a/..", "/a b", "/a%2Fb", "/a?x"])
        )
    elif where == "tls":
        expose["tls"] = {"secretName": draw(st.sampled_from(["TLS", "a_b", "-a", ""]))}
    elif where == "class":
        expose["class"] = draw(st.sampled_from(["Public", "a b", "a_b", "-a"]))
    else:
        spec["profile"] = "worker"
        for field in ("port", "probes", "preStopSleepSeconds"):
            spec.pop(field, None)
    spec["expose"] = expose
    return f"expose {where}", "expose"


@mutation
def _null_required(draw: Draw, spec: Spec) -> tuple[str, str]:
    field = draw(st.sampled_from(["image", "resources"]))
    spec[field] = None
    return f"{field} null", field


def _valid_then(mutate: Mutation) -> st.SearchStrategy[NearMiss]:
    @st.composite
    def build(draw: Draw) -> NearMiss:
        spec = copy.deepcopy(draw(valid_specs()))
        what, field = mutate(draw, spec)
        return NearMiss(what, spec, field)

    return build()


def near_misses(mutations: list[Mutation] | None = None) -> st.SearchStrategy[NearMiss]:
    """One valid spec, broken in exactly one way the contract refuses (by any of
    ``mutations``, default all)."""
    return st.one_of([_valid_then(m) for m in mutations or MUTATIONS])


# -- wild specs --------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        unicode_text,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(unicode_text, inner, max_size=4)
    ),
    max_leaves=12,
)

#: where a wild value may land: (path into the spec, ...)
_PLACES: list[tuple[str | int, ...]] = [
    ("image",),
    ("profile",),
    ("replicas",),
    ("port",),
    ("command",),
    ("args",),
    ("env",),
    ("env", 0, "value"),
    ("secrets",),
    ("secrets", 0, "mountPath"),
    ("secrets", 0, "env"),
    ("resources",),
    ("resources", "limits"),
    ("resources", "limits", "memory"),
    ("resources", "requests", "cpu"),
    ("probes",),
    ("probes", "liveness"),
    ("probes", "liveness", "periodSeconds"),
    ("probes", "readiness", "path"),
    ("secrets", 0, "name"),
    ("env", 0, "name"),
    ("terminationGracePeriodSeconds",),
    ("preStopSleepSeconds",),
    ("securityContext",),
    ("securityContext", "runAsUser"),
    ("automountServiceAccountToken",),
    ("tmpSizeLimit",),
    ("expose",),
    ("expose", "host"),
    ("expose", "path"),
    ("expose", "tls", "secretName"),
    ("expose", "class"),
]


def _put(spec: Spec, path: tuple[str | int, ...], value: Any) -> None:
    node: Any = spec
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or not node:
                return
            node = node[0]
            continue
        child = node.get(part)
        if isinstance(nxt, int):
            if not isinstance(child, list) or not child:
                node[part] = [{"name": "wild"}] if part in ("env", "secrets") else [{}]
        elif not isinstance(child, dict):
            node[part] = {}
        node = node[part]
    if isinstance(node, dict):
        node[path[-1]] = value


#: strings that look like quantities, or almost (the two parsers differ at the edges)
quantity_ish = st.one_of(
    st.text(st.sampled_from(list("0123456789.+-eEmkKMGTPinu _")), min_size=1, max_size=8),
    st.from_regex(
        r"[+-]?([0-9]{1,18}(\.[0-9]{0,5})?|\.[0-9]{1,5})([eE][+-]?[0-9]{1,3}|[KMGTPE]i|[numkMGTPE])?",
        fullmatch=True,
    ),
)
#: strings with the whitespace and controls that regex engines disagree about
tricky_text = st.text(
    st.sampled_from(["a", "/", ".", "\u00a0", "\u2003", "\x0b", "\x1c", "\x85", " ", "\t", "é"]),
    min_size=1,
    max_size=5,
)


@st.composite
def wild_specs(draw: Draw) -> Spec:
    """A valid spec with an arbitrary JSON value (or a near-quantity, or a string of tricky
    characters) put in one or two places."""
    spec = copy.deepcopy(draw(valid_specs()))
    for _ in range(draw(st.integers(1, 2))):
        value = draw(st.one_of(json_values, quantity_ish, tricky_text.map(lambda t: "/" + t)))
        _put(spec, draw(st.sampled_from(_PLACES)), value)
    return spec
