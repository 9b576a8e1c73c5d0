"""The PythonApp API (``pythonapp.dev/v1alpha1``) as strict pydantic models.

These models are the single source of truth for the API: ``pythonapp validate`` uses them, the
renderer reads them, and the CRD schema (with its CEL rules) is generated from them. Every field
carries a description because it becomes the ``kubectl explain`` text.

Cross-field rules are declared once, as :class:`Rule` objects holding both the Python check and
the equivalent CEL expression, so the two places that must agree sit next to each other.
Defaults that depend on other fields (the port and probes of a web app, the preStop drain) are
applied by the renderer, not written into the CRD: an API-server default could not know the
profile, and GitOps tools would see fields they never wrote.
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from kubernetes.utils.quantity import parse_quantity
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from .. import GROUP, VERSION
from . import image

API_VERSION = f"{GROUP}/{VERSION}"

# -- defaults (documented in descriptions; applied by the renderer) ----------------------------
DEFAULT_REPLICAS = 2
DEFAULT_PORT = 8000
DEFAULT_GRACE_SECONDS = 30
DEFAULT_PRESTOP_WEB_SECONDS = 5
DEFAULT_UID = 10001
DEFAULT_TMP_SIZE = "64Mi"
SECRETS_ROOT = "/run/secrets"
CONFIG_ROOT = "/etc/config"
#: Secrets one app may name (the admission policy checks each one: api/admission.py)
MAX_SECRETS = 16
#: image pull Secrets one app may name: the admission policy checks these too, one
#: authorization check each, and every check costs a third of one expression's budget
#: (api/admission.py); a few registries per app is what real apps use, and a platform-wide
#: default (a later part of issue 21) adds the shared ones without the app naming them
MAX_IMAGE_PULL_SECRETS = 4
#: ConfigMaps one app may name, and keys of one mapped to env vars. Lower than the Secrets'
#: bounds (16 and 16) for the CRD's CEL cost budget: the API server sums each rule's estimated
#: cost times the most items it can run over, and the env-name uniqueness rule compares every
#: config[].env name with every secrets[].env name (16 x 16): at 16 x 16 here the CRD was
#: refused ("estimated rule cost total ... exceeds budget by factor of 1.085x", Kubernetes
#: 1.30's estimator, kubectl-validate), at 8 x 8 by 1.002x; 8 x 4 fits with room for the next
#: fields. More keys than that: mount the ConfigMap as files (the default)
MAX_CONFIG = 8
MAX_CONFIG_ENV = 4

DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"  # a namespace name
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
KEY_NAME_PATTERN = r"^[-._a-zA-Z0-9]+$"
# absolute, normalised (no //, /./, /../, no trailing /), not "/" itself
ABS_PATH = r"^(/([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+))+$"
# printable ASCII only: \s means Unicode whitespace to Python and ASCII whitespace to RE2 (CEL),
# so "/a\u00a0b" was refused by one and accepted by the other; a probe path is sent as is
HTTP_PATH = r"^/[!-~]*$"

MSG_NAME = (
    "must be a DNS-1035 label of at most 63 characters (lowercase letters, digits and '-', "
    "starting with a letter): it names the Deployment, Service and pods"
)


#: A list whose items are unique by ``name`` (the API server refuses duplicates, and server-side
#: apply merges such lists by key, so GitOps tools and humans can own different items).
LIST_MAP_BY_NAME: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
}


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def _schema_extra(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


# -- scalar types ----------------------------------------------------------------------------


def _check_image(value: str) -> str:
    try:
        image.parse_image(value)
    except image.ImageError as exc:
        raise _fail("image", str(exc)) from None
    return value


IMAGE_RULES = (
    cel(
        f"self.matches(r'{image.NAME_TAG_PATTERN[:-1]}(@.*)?$')",
        image.MSG_MALFORMED,
    ),
    cel("self.contains('@')", image.MSG_NO_DIGEST),
    cel(
        "!self.contains('@') || self.matches(r'^[^@]*@sha256:[0-9a-f]{64}$')",
        image.MSG_BAD_DIGEST,
    ),
    cel(f"!self.matches(r'{image.LATEST_TAG_PATTERN}')", image.MSG_LATEST),
)

Image = Annotated[
    str,
    AfterValidator(_check_image),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": image.MAX_LENGTH,
            "x-kubernetes-validations": list(IMAGE_RULES),
        }
    ),
]

MSG_QUANTITY = "must be a Kubernetes quantity such as 250m, 1, 512Mi or 2Gi"
#: the quantity grammar of the Kubernetes API reference (number, then an SI or binary suffix
#: or an exponent), with exponents of at most two digits. Both sides check it first: the
#: client library's parser takes what Python's Decimal takes ("1_000", " 1", "Infinity",
#: "1K"), the API server's takes a suffix with no number ("m", ".E3"); and an exponent like
#: e-899 or e584 defeats the float arithmetic of the whole-bytes rule (CEL overflows, Python
#: underflows to 0). None of them is a quantity anyone means.
QUANTITY_PATTERN = (
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,2}|[KMGTPE]i|[numkMGTPE])?$"
)
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
#: bounds the CEL rules' cost (an unbounded string makes the CRD exceed its cost budget)
QUANTITY_MAX_LENGTH = 64
MSG_QUANTITY_LENGTH = f"must be at most {QUANTITY_MAX_LENGTH} characters"


def quantity_value(value: str | int) -> Decimal:
    """The numeric value of a Kubernetes quantity (``512Mi`` -> bytes, ``250m`` -> 0.25)."""
    return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]


MSG_QUANTITY_NUMBER = (
    "must be a string or a whole number: write a fraction as a quantity string, e.g. '500m' "
    "or '0.5'"
)


def _normalise_quantity(value: object) -> str:
    # int-or-string, as in the CRD: the API server refuses a fractional number here (0.5). A
    # whole one written as 64.0 is an integer by the time it gets there: kubectl, Argo CD and
    # Flux turn YAML into JSON with sigs.k8s.io/yaml, which writes 64.0 as 64 (but 1e21 and
    # above with an exponent, which the API server reads as a fraction again).
    if isinstance(value, float):
        if not value.is_integer() or abs(value) >= 1e21:
            raise _fail("quantity", MSG_QUANTITY_NUMBER)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail("quantity", MSG_QUANTITY)
    text = str(value)
    if isinstance(value, str) and len(text) > QUANTITY_MAX_LENGTH:
        raise _fail("quantity", MSG_QUANTITY_LENGTH)
    if not _QUANTITY_RE.fullmatch(text):
        raise _fail("quantity", MSG_QUANTITY)
    try:
        parsed = quantity_value(text)
    except (ValueError, ArithmeticError):
        raise _fail("quantity", MSG_QUANTITY) from None
    if parsed < 0:
        raise _fail("quantity", "must not be negative")
    return text


def is_quantity(value: str) -> str:
    """CEL: ``value`` is a quantity, and false (never an error) for a string that is not one.

    A rule that errors is not ratcheted by the API server: on an object stored while the CRD
    had no schema (limits.memory: '+muEG0e'), a rule calling quantity() on it refused even
    the operator's status patch, so the app could not be marked Stalled. A rule that is merely
    false on an unchanged value is ratcheted. (A type guard, ``type(value) == string``, was
    tried and dropped: a value of another JSON type cannot be read by CEL at all, so it guarded
    nothing, and its cost put the CRD over the estimated cost budget of Kubernetes 1.30's
    estimator, kubectl-validate's, by 1.13x: such a cluster would refuse the CRD.)"""
    return f"isQuantity(string({value}))"


_QUANTITY_RULES = [
    cel(f"{is_quantity('self')} && string(self).matches(r'{QUANTITY_PATTERN}')", MSG_QUANTITY),
    cel(
        f"!{is_quantity('self')} || quantity(string(self)).compareTo(quantity('0')) >= 0",
        "must not be negative",
    ),
]

Quantity = Annotated[
    str,
    BeforeValidator(_normalise_quantity),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "maxLength": QUANTITY_MAX_LENGTH,
            "x-kubernetes-validations": _QUANTITY_RULES,
        }
    ),
]

MSG_WHOLE_BYTES = (
    "must be a whole number of bytes, e.g. 256Mi or 1Gi: 1m is a thousandth of a byte (M is mega)"
)
MSG_BYTES_MAX = "must be less than 1Ti"
_BYTES_MAX = 2**40


def _whole_bytes(value: str) -> str:
    # The API server warns about a fractional byte count on a pod's resources (and 512m for
    # 512Mi is a classic slip). Exact on both sides; see the CEL twin below.
    parsed = quantity_value(value)
    if parsed >= _BYTES_MAX:
        raise _fail("quantity", MSG_BYTES_MAX)
    if parsed != parsed.to_integral_value():
        raise _fail("quantity", MSG_WHOLE_BYTES)
    return value


_Q = "quantity(string(self))"
_LIMIT = "quantity('1Ti')"

#: a quantity of bytes (memory, storage): a whole number of them, below 1Ti.
#: CEL has no exact test: isInteger() is about a quantity's internal form (false for 2000m
#: and 0.5Ki) and asApproximateFloat() is approximate (29.0Mi is 30408704.000000004). So the
#: rule rounds the float to the nearest integer and subtracts it from the quantity, exactly:
#: a whole number leaves 0. Below 1Ti the float is within far less than 0.5 of the quantity.
Bytes = Annotated[
    str,
    BeforeValidator(_normalise_quantity),
    AfterValidator(_whole_bytes),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "maxLength": QUANTITY_MAX_LENGTH,
            "x-kubernetes-validations": [
                *_QUANTITY_RULES,
                cel(f"!{is_quantity('self')} || {_Q}.compareTo({_LIMIT}) < 0", MSG_BYTES_MAX),
                cel(
                    f"!{is_quantity('self')} || {_Q}.compareTo({_LIMIT}) >= 0 || "
                    f"{_Q}.compareTo(quantity('0')) < 0 || "
                    f"{_Q}.sub(int({_Q}.asApproximateFloat() + 0.5)).compareTo(quantity('0')) == 0",
                    MSG_WHOLE_BYTES,
                ),
            ],
        }
    ),
]


def _matches(pattern: str, message: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise _fail("pattern", message)
        return value

    return check


@dataclass(frozen=True)
class StringRule:
    """A string type's checks, the same in pydantic and the CRD.

    ``extra`` holds further (python predicate, CEL rule, message) triples.
    """

    pattern: str
    message: str
    max_length: int
    description: str
    extra: tuple[tuple[Callable[[str], bool], str, str], ...] = ()

    @property
    def validator(self) -> AfterValidator:
        """The pydantic side."""
        pattern_check = _matches(self.pattern, self.message)

        def check(value: str) -> str:
            pattern_check(value)
            for predicate, _rule, message in self.extra:
                if not predicate(value):
                    raise _fail("string", message)
            return value

        return AfterValidator(check)

    @property
    def schema(self) -> WithJsonSchema:
        """The CRD side."""
        rules = [cel(f"self.matches(r'{self.pattern}')", self.message)]
        rules += [cel(rule, message) for _p, rule, message in self.extra]
        return WithJsonSchema(
            {
                "type": "string",
                "maxLength": self.max_length,
                "description": self.description,
                "x-kubernetes-validations": rules,
            }
        )

    @property
    def length(self) -> Any:
        """The length bound (pydantic ``Field``)."""
        return Field(max_length=self.max_length)


_SECRET_NAME = StringRule(
    DNS1123_SUBDOMAIN,
    "must be a Secret name: a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')",
    253,
    "Name of a Secret in the PythonApp's namespace. Only referenced: the operator never reads it.",
)
_CONFIGMAP_NAME = StringRule(
    DNS1123_SUBDOMAIN,
    "must be a ConfigMap name: a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')",
    253,
    "Name of a ConfigMap in the PythonApp's namespace (referenced, never copied).",
)
_ENV_NAME = StringRule(
    ENV_NAME,
    "must be an environment variable name: letters, digits, '_', '-' or '.', "
    "not starting with a digit",
    128,
    "Environment variable name.",
)
_SECRET_KEY = StringRule(
    KEY_NAME_PATTERN,
    "must be a Secret key: letters, digits, '-', '_' or '.'",
    253,
    "Key inside the Secret.",
)
_CONFIG_KEY = StringRule(
    KEY_NAME_PATTERN,
    "must be a ConfigMap key: letters, digits, '-', '_' or '.'",
    253,
    "Key inside the ConfigMap.",
)
MSG_TMP_SHADOW = "must not be /tmp or below it: /tmp is the app's writable scratch volume"
_MOUNT_PATH_MESSAGE = (
    "must be an absolute, normalised path such as /run/secrets/db "
    "(no '//', '.' or '..' parts, no trailing '/', not '/')"
)
_NOT_TMP = (
    (
        lambda v: v != "/tmp" and not v.startswith("/tmp/"),  # noqa: S108
        "self != '/tmp' && !self.startsWith('/tmp/')",
        MSG_TMP_SHADOW,
    ),
)
_MOUNT_PATH = StringRule(
    ABS_PATH,
    _MOUNT_PATH_MESSAGE,
    512,
    "Absolute directory where the Secret's keys appear as read-only files (never subPath). "
    f"Default {SECRETS_ROOT}/<name>.",
    extra=_NOT_TMP,
)
_CONFIG_MOUNT_PATH = StringRule(
    ABS_PATH,
    _MOUNT_PATH_MESSAGE,
    256,
    "Absolute directory where the ConfigMap's keys appear as read-only files (never "
    f"subPath). Default {CONFIG_ROOT}/<name>.",
    extra=_NOT_TMP,
)
_HTTP_PATH = StringRule(
    HTTP_PATH,
    "must be an HTTP path starting with '/' in printable ASCII, without spaces (percent-encode "
    "anything else), e.g. /health",
    512,
    "HTTP path probed on the app's port (web apps only).",
)


SecretName = Annotated[str, _SECRET_NAME.length, _SECRET_NAME.validator, _SECRET_NAME.schema]
EnvName = Annotated[str, _ENV_NAME.length, _ENV_NAME.validator, _ENV_NAME.schema]
SecretKeyName = Annotated[str, _SECRET_KEY.length, _SECRET_KEY.validator, _SECRET_KEY.schema]
MountPath = Annotated[str, _MOUNT_PATH.length, _MOUNT_PATH.validator, _MOUNT_PATH.schema]
ConfigMapName = Annotated[
    str, _CONFIGMAP_NAME.length, _CONFIGMAP_NAME.validator, _CONFIGMAP_NAME.schema
]
ConfigKeyName = Annotated[str, _CONFIG_KEY.length, _CONFIG_KEY.validator, _CONFIG_KEY.schema]
ConfigMountPath = Annotated[
    str, _CONFIG_MOUNT_PATH.length, _CONFIG_MOUNT_PATH.validator, _CONFIG_MOUNT_PATH.schema
]
HttpPath = Annotated[str, _HTTP_PATH.length, _HTTP_PATH.validator, _HTTP_PATH.schema]


# -- building blocks ---------------------------------------------------------------------------


class Base(BaseModel):
    """Strict base: unknown fields are refused, YAML uses camelCase, and values are read as the
    API server reads them against the CRD's schema, so both accept and refuse the same specs:

    - each value must have its JSON type: ``"2"`` is not an integer, ``"true"`` not a boolean
      (pydantic's lax mode would convert both; the API server refuses them);
    - a number with no fractional part (``2.0``) is an integer, as for the API server;
    - a field set to null is absent: the API server prunes nulls from fields that are not
      nullable (none is) before it validates, so ``replicas:`` left empty in YAML means the
      default, and ``image: null`` means "image is required".
    """

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        use_attribute_docstrings=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _as_the_api_server_reads(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        integers = _integer_fields(cls)
        return {
            key: int(value)
            if isinstance(value, float) and value.is_integer() and key in integers
            else value
            for key, value in data.items()
            if value is not None
        }


@functools.cache
def _integer_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names and aliases of a model's integer fields (``int`` or ``int | None``)."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if annotation is int or int in typing.get_args(annotation):
            names.update({name, info.alias or name})
    return frozenset(names)


class EnvVar(Base):
    """A plain setting passed as an environment variable. Never put secrets here: use
    ``secrets[].env``, which references a Secret key instead of copying its value."""

    name: EnvName = Field(description="Environment variable name.")
    value: str = Field("", max_length=32768, description="Value (plain text, visible in specs).")


class SecretEnv(Base):
    """Exposes one key of the Secret as an environment variable (``secretKeyRef``). Files are
    the default and the safer choice; env mapping is an explicit opt-in."""

    name: EnvName = Field(description="Environment variable name.")
    key: SecretKeyName = Field(description="Key inside the Secret whose value the variable gets.")


class SecretRef(Base):
    """A Secret made available to the app at run time: its keys mounted read-only as files under
    ``mountPath`` (the /run/secrets convention apps already read), and optionally single keys as
    environment variables. The Secret is referenced: its values never enter the spec, the
    Deployment, the status, events or logs. Where the operator may read Secrets, it checks that
    the Secret and its mapped keys exist and hashes its data for ``rotation``, keeping no value."""

    name: SecretName = Field(
        description="Name of a Secret in the same namespace (referenced; no value is copied)."
    )
    mount_path: MountPath | None = Field(
        None,
        description="Absolute directory for the Secret's files (read-only, never subPath). "
        f"Default {SECRETS_ROOT}/<name>.",
    )
    env: list[SecretEnv] = Field(
        default_factory=list,
        max_length=16,
        description="Keys of this Secret exposed as environment variables (secretKeyRef). "
        "Files are the default; an env mapping is an explicit choice.",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    rotation: Literal["restart", "none"] = Field(
        "restart",
        description="What a change to the Secret's data does. restart (default): the pods are "
        "restarted once per change (a rolling update, through a hash of the data in the pod "
        "template; the operator reads the Secret to compute it and keeps no value). none: "
        "nothing restarts; mounted files still update in place, env vars keep their old value "
        "until the pods restart for another reason.",
    )

    @property
    def effective_mount_path(self) -> str:
        """Where the files appear, default applied."""
        return self.mount_path or f"{SECRETS_ROOT}/{self.name}"


class ImagePullSecret(Base):
    """A Secret holding registry credentials (type ``kubernetes.io/dockerconfigjson``) the
    kubelet uses to pull the app's image: Kubernetes' own shape (``- name: regcred``), so a
    list copied from a pod spec or a chart's values works as it is. Referenced, never read:
    the operator checks only that it exists, and a change to it restarts nothing (it is used
    at pull time only)."""

    name: SecretName = Field(
        description="Name of a Secret in the same namespace (referenced; never read)."
    )


class ConfigEnv(Base):
    """Exposes one key of the ConfigMap as an environment variable (``configMapKeyRef``)."""

    name: EnvName = Field(description="Environment variable name.")
    key: ConfigKeyName = Field(
        description="Key inside the ConfigMap (its data) whose value the variable gets."
    )


class ConfigRef(Base):
    """A ConfigMap made available to the app: its keys mounted read-only as files under
    ``mountPath`` (default /etc/config/<name>, never subPath, so an edited ConfigMap reaches
    the files), and optionally single keys as environment variables. The same shape, defaults
    and rules as ``secrets``. Where the operator may read ConfigMaps, it checks that the
    ConfigMap and its mapped keys exist and hashes its data for ``rotation``."""

    name: ConfigMapName = Field(description="Name of a ConfigMap in the same namespace.")
    mount_path: ConfigMountPath | None = Field(
        None,
        description="Absolute directory for the ConfigMap's files (read-only, never subPath). "
        f"Default {CONFIG_ROOT}/<name>.",
    )
    env: list[ConfigEnv] = Field(
        default_factory=list,
        max_length=MAX_CONFIG_ENV,
        description="Keys of this ConfigMap exposed as environment variables (configMapKeyRef).",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    rotation: Literal["restart", "none"] = Field(
        "restart",
        description="What a change to the ConfigMap's data does. restart (default): the pods "
        "are restarted once per change (a rolling update, through a hash of the data in the "
        "pod template). none: nothing restarts; mounted files still update in place, env vars "
        "keep their old value until the pods restart for another reason.",
    )

    @property
    def effective_mount_path(self) -> str:
        """Where the files appear, default applied."""
        return self.mount_path or f"{CONFIG_ROOT}/{self.name}"


# -- resources ---------------------------------------------------------------------------------

RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")


class ResourceList(Base):
    """Amounts of cpu, memory and ephemeral-storage (Kubernetes quantities)."""

    cpu: Quantity | None = Field(None, description="CPU, e.g. 250m or 1.")
    memory: Bytes | None = Field(None, description="Memory, e.g. 256Mi or 1Gi.")
    ephemeral_storage: Bytes | None = Field(
        None,
        alias="ephemeral-storage",
        description="Local scratch space (logs, /tmp, writable layers), e.g. 256Mi.",
    )

    def get(self, resource: str) -> str | None:
        """Value by its Kubernetes name (``ephemeral-storage`` included)."""
        value: str | None = getattr(self, resource.replace("-", "_"))
        return value


class Limits(ResourceList):
    """Upper bounds. ``memory`` is required: a Python process without a memory limit can take a
    node's memory from its neighbours."""

    memory: Bytes = Field(description="Memory limit (required), e.g. 512Mi.")


def _limit_rule(resource: str) -> dict[str, str]:
    field = resource.replace("-", "__dash__")
    return cel(
        f"!has(self.requests) || !has(self.requests.{field}) || !has(self.limits.{field}) || "
        f"!{is_quantity(f'self.limits.{field}')} || !{is_quantity(f'self.requests.{field}')} || "
        f"quantity(string(self.limits.{field}))"
        f".compareTo(quantity(string(self.requests.{field}))) >= 0",
        _limit_message(resource),
        f".limits.{resource}" if "-" not in resource else None,
    )


def _limit_message(resource: str) -> str:
    return (
        f"limits.{resource} is below requests.{resource}: raise the limit or lower the request "
        "(a limit must be at least its request)"
    )


class Resources(Base):
    """Resource requests and limits. Defaults: requests cpu 100m, memory equal to its limit,
    ephemeral-storage 128Mi (a default request never above the limit given); limits cpu 1 (or
    the cpu request if higher), ephemeral-storage 512Mi (or the request if higher). A limit
    below its request is refused."""

    model_config = ConfigDict(
        json_schema_extra=_schema_extra(*(_limit_rule(r) for r in RESOURCE_NAMES))
    )

    requests: ResourceList = Field(
        default_factory=ResourceList, description="What the scheduler reserves for each pod."
    )
    limits: Limits = Field(description="Upper bounds per container; limits.memory is required.")

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        for resource in RESOURCE_NAMES:
            request, limit = self.requests.get(resource), self.limits.get(resource)
            if (
                request is not None
                and limit is not None
                and quantity_value(limit) < quantity_value(request)
            ):
                raise _rule_error([(("limits", resource), _limit_message(resource))])
        return self


# -- probes ------------------------------------------------------------------------------------

MSG_PROBE_BOTH = "set either path (HTTP) or command (exec), not both"
MSG_PROBE_TIMEOUT = "timeoutSeconds must not exceed periodSeconds"


class Probe(Base):
    """A health check. Web apps probe an HTTP ``path`` on the app's port; workers (and web apps
    that prefer it) run a ``command`` inside the container. Unset numbers take the defaults of
    the probe kind (see ``probes``)."""

    model_config = ConfigDict(
        json_schema_extra=_schema_extra(
            cel("!(has(self.path) && has(self.command))", MSG_PROBE_BOTH),
            cel(
                "!has(self.timeoutSeconds) || !has(self.periodSeconds) || "
                "self.timeoutSeconds <= self.periodSeconds",
                MSG_PROBE_TIMEOUT,
                ".timeoutSeconds",
            ),
        )
    )

    path: HttpPath | None = Field(None, description="HTTP path to GET (web apps), e.g. /health.")
    command: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        None,
        min_length=1,
        max_length=32,
        description="Command run in the container (exec probe); exit 0 means healthy.",
    )
    initial_delay_seconds: int | None = Field(
        None, ge=0, le=3600, description="Seconds to wait before the first probe."
    )
    period_seconds: int | None = Field(None, ge=1, le=3600, description="Seconds between probes.")
    timeout_seconds: int | None = Field(
        None, ge=1, le=3600, description="Seconds before a probe attempt counts as failed."
    )
    failure_threshold: int | None = Field(
        None, ge=1, le=1000, description="Consecutive failures before the probe fails."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Probe:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if self.path is not None and self.command is not None:
            problems.append(((), MSG_PROBE_BOTH))
        if (
            self.timeout_seconds is not None
            and self.period_seconds is not None
            and self.timeout_seconds > self.period_seconds
        ):
            problems.append((("timeoutSeconds",), MSG_PROBE_TIMEOUT))
        if problems:
            raise _rule_error(problems)
        return self


class Probes(Base):
    """Liveness, readiness and startup probes. Web defaults: all three GET ``/health`` on the
    app port (readiness as ``/health?probe=readiness``, so the app can tell it apart);
    liveness every 30 s with a 10 s timeout and 3 failures, readiness every 10 s, startup every
    5 s for up to 60 s. Workers get only the probes given here, and only exec (command) probes."""

    liveness: Probe | None = Field(None, description="Restarts the container when it fails.")
    readiness: Probe | None = Field(
        None, description="Takes the pod out of the Service while it fails."
    )
    startup: Probe | None = Field(
        None, description="Holds the other probes back until the app has started."
    )

    def items(self) -> Iterator[tuple[str, Probe]]:
        """The probes that are set, by kind."""
        for kind in ("liveness", "readiness", "startup"):
            probe = getattr(self, kind)
            if probe is not None:
                yield kind, probe


# -- security ----------------------------------------------------------------------------------


class SecurityContext(Base):
    """Numeric identity of the app's processes. A numeric user is always set, because an image's
    ``USER appuser`` cannot be verified as non-root by the kubelet. Root (0) is refused."""

    run_as_user: int = Field(
        DEFAULT_UID, ge=1, le=2147483647, description=f"User id (> 0). Default {DEFAULT_UID}."
    )
    run_as_group: int = Field(
        DEFAULT_UID, ge=1, le=2147483647, description=f"Group id (> 0). Default {DEFAULT_UID}."
    )
    fs_group: int = Field(
        DEFAULT_UID,
        ge=1,
        le=2147483647,
        description=f"Group that owns mounted volumes (> 0). Default {DEFAULT_UID}.",
    )


# -- scaling and disruption --------------------------------------------------------------------

#: the HPA's target when autoscaling names none (what ``kubectl autoscale`` and the HPA's own
#: v1 default use)
DEFAULT_CPU_UTILIZATION = 80
MAX_REPLICAS = 1000
MSG_MIN_ABOVE_MAX = "minReplicas must not be above maxReplicas"


class ScalingPolicy(Base):
    """One step the autoscaler may take in a period (autoscaling/v2 HPAScalingPolicy)."""

    type: Literal["Pods", "Percent"] = Field(
        description="Pods: at most value pods per period. Percent: at most value percent of "
        "the current pods per period."
    )
    value: int = Field(ge=1, le=100000, description="How many pods, or percent, per period.")
    period_seconds: int = Field(
        ge=1, le=1800, description="The period the policy holds for (1 to 1800 seconds)."
    )


class ScalingRules(Base):
    """How fast one direction may scale (autoscaling/v2 HPAScalingRules). Unset fields take the
    HorizontalPodAutoscaler's defaults."""

    stabilization_window_seconds: int | None = Field(
        None,
        ge=0,
        le=3600,
        description="Seconds of past recommendations considered, so the count does not "
        "flap (HPA default: 0 up, 300 down).",
    )
    select_policy: Literal["Max", "Min", "Disabled"] | None = Field(
        None,
        description="Which policy wins when several apply: Max (default), Min, or Disabled "
        "(no scaling in this direction).",
    )
    policies: list[ScalingPolicy] | None = Field(
        None,
        min_length=1,
        max_length=10,
        description="The steps allowed per period (HPA defaults when unset).",
    )


class AutoscalingBehavior(Base):
    """Scaling speed up and down (autoscaling/v2 HorizontalPodAutoscalerBehavior)."""

    scale_up: ScalingRules | None = Field(None, description="Rules for scaling up.")
    scale_down: ScalingRules | None = Field(None, description="Rules for scaling down.")


class Autoscaling(Base):
    """A HorizontalPodAutoscaler (autoscaling/v2) for the app's Deployment. While it is set the
    autoscaler owns the replica count: the operator stops applying ``replicas`` (handing the
    running count over, so switching on never drops it), and ``replicas`` cannot be changed
    (``kubectl scale pyapp`` is refused). Without a target, CPU at
    80% of the request is used."""

    model_config = ConfigDict(
        json_schema_extra=_schema_extra(
            cel("self.minReplicas <= self.maxReplicas", MSG_MIN_ABOVE_MAX, ".minReplicas")
        )
    )

    min_replicas: int = Field(
        ge=1, le=MAX_REPLICAS, description="Fewest pods the autoscaler keeps (>= 1)."
    )
    max_replicas: int = Field(
        ge=1, le=MAX_REPLICAS, description="Most pods the autoscaler makes (>= minReplicas)."
    )
    target_cpu_utilization_percentage: int | None = Field(
        None,
        ge=1,
        le=1000,
        alias="targetCPUUtilizationPercentage",
        description="Average CPU use to aim for, in percent of the CPU request. Default "
        f"{DEFAULT_CPU_UTILIZATION} when no target is set.",
    )
    target_memory_utilization_percentage: int | None = Field(
        None,
        ge=1,
        le=1000,
        alias="targetMemoryUtilizationPercentage",
        description="Average memory use to aim for, in percent of the memory request (which "
        "equals the limit unless set).",
    )
    behavior: AutoscalingBehavior | None = Field(
        None, description="Scaling speed up and down (HPA defaults when unset)."
    )

    @property
    def effective_cpu_target(self) -> int | None:
        """The CPU target, the default applied when no target is set at all."""
        if (
            self.target_cpu_utilization_percentage is None
            and self.target_memory_utilization_percentage is None
        ):
            return DEFAULT_CPU_UTILIZATION
        return self.target_cpu_utilization_percentage

    @model_validator(mode="after")
    def _range(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise _rule_error([(("minReplicas",), MSG_MIN_ABOVE_MAX)])
        return self


MAX_UNAVAILABLE_PERCENT = r"^([1-9][0-9]?|100)%$"
#: The API server's words first (the CRD checks this field with plain schema keywords, which
#: apply by the value's type: minimum/maximum to a number, pattern to a string), then why.
#: Not CEL: one more rule put the CRD over the CEL cost budget of the Kubernetes 1.30
#: estimator (kubectl-validate's) by 0.6%, and a cluster on it would refuse the CRD.
MSG_MAX_UNAVAILABLE_LOW = "should be greater than or equal to 1: 0 would block every node drain"
MSG_MAX_UNAVAILABLE_HIGH = f"should be less than or equal to {MAX_REPLICAS}"
MSG_MAX_UNAVAILABLE_PERCENT = (
    f"should match '{MAX_UNAVAILABLE_PERCENT}': a percentage from 1% to 100% such as '25%' "
    "(a number of pods is written without quotes)"
)
MSG_MAX_UNAVAILABLE_TYPE = "must be a whole number of pods or a percentage string such as '25%'"
MSG_DISRUPTION_OFF = (
    "maxUnavailable has no effect with enabled: false (no PodDisruptionBudget): remove one"
)


def _check_max_unavailable(value: object) -> int | str:
    # int-or-string, read as the API server reads JSON (a whole float is an integer)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _fail("max_unavailable", MSG_MAX_UNAVAILABLE_TYPE)
    if isinstance(value, str):
        if not re.fullmatch(MAX_UNAVAILABLE_PERCENT, value):
            raise _fail("max_unavailable", MSG_MAX_UNAVAILABLE_PERCENT)
        return value
    if value < 1:
        raise _fail("max_unavailable", MSG_MAX_UNAVAILABLE_LOW)
    if value > MAX_REPLICAS:
        raise _fail("max_unavailable", MSG_MAX_UNAVAILABLE_HIGH)
    return value


MaxUnavailable = Annotated[
    int | str,
    BeforeValidator(_check_max_unavailable),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "minimum": 1,
            "maximum": MAX_REPLICAS,
            "maxLength": 4,
            "pattern": MAX_UNAVAILABLE_PERCENT,
        }
    ),
]


class Disruption(Base):
    """The app's PodDisruptionBudget, which limits voluntary evictions (node drains) without
    ever blocking one: ``maxUnavailable`` (never a minAvailable equal to the replicas) and
    ``unhealthyPodEvictionPolicy: AlwaysAllow`` (a crash-looping pod never holds a drain).
    By default there is one when the app runs more than one pod (with autoscaling: when
    minReplicas > 1): at one pod a budget could only delay a drain, not keep the app up."""

    model_config = ConfigDict(
        json_schema_extra=_schema_extra(
            cel(
                "!has(self.enabled) || self.enabled || !has(self.maxUnavailable)",
                MSG_DISRUPTION_OFF,
                ".maxUnavailable",
            )
        )
    )

    enabled: bool | None = Field(
        None,
        description="true: always a PodDisruptionBudget, even at one pod. false: none. "
        "Unset (default): one when more than one pod runs (replicas, or "
        "autoscaling.minReplicas, above 1).",
    )
    max_unavailable: MaxUnavailable | None = Field(
        None,
        description="Pods that may be down at once by voluntary disruption: a number (>= 1) "
        "or a percentage ('25%'). Default 1.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Disruption:
        if self.enabled is False and self.max_unavailable is not None:
            raise _rule_error([(("maxUnavailable",), MSG_DISRUPTION_OFF)])
        return self


# -- migrations ---------------------------------------------------------------------------------

DEFAULT_MIGRATE_TIMEOUT_SECONDS = 600
DEFAULT_MIGRATE_BACKOFF_LIMIT = 1


class Migrate(Base):
    """A migrations gate: before the Deployment moves to a new image (or when this command
    changes), the operator runs this command once in a Job with the new image and the app's
    Secrets, env and security settings, and rolls the Deployment only after the Job succeeded.
    A failed or timed-out Job leaves the running version serving (Stalled, MigrationFailed)
    until a new image or command replaces it. Going back to an earlier image runs it again."""

    command: list[Annotated[str, Field(max_length=4096)]] = Field(
        min_length=1,
        max_length=64,
        description="The migration's command (replaces the image's ENTRYPOINT), e.g. "
        "['python', 'manage.py', 'migrate', '--noinput'].",
    )
    args: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        None, max_length=256, description="Arguments to the command."
    )
    timeout_seconds: int = Field(
        DEFAULT_MIGRATE_TIMEOUT_SECONDS,
        ge=1,
        le=86400,
        description="Longest the migration may run, retries included (the Job's "
        f"activeDeadlineSeconds). Default {DEFAULT_MIGRATE_TIMEOUT_SECONDS}.",
    )
    backoff_limit: int = Field(
        DEFAULT_MIGRATE_BACKOFF_LIMIT,
        ge=0,
        le=10,
        description="Failed attempts retried before the migration counts as failed (the "
        f"Job's backoffLimit). Default {DEFAULT_MIGRATE_BACKOFF_LIMIT}: one retry, for a "
        "database that was briefly unreachable.",
    )


# -- expose: a way in for web apps -------------------------------------------------------------

#: what a route's path matches from: every path of the host
DEFAULT_EXPOSE_PATH = "/"
#: a host name as both route APIs take it (no wildcard, no IP address, no port), lowercase
HOSTNAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#: "/" or an absolute, normalised path (no '//', '.' or '..' segments, no trailing '/')
ROUTE_PATH = r"^(/|(/([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+))+)$"
#: the characters a URL path segment may hold unencoded (RFC 3986 pchar, without '%' and
#: the quote): both APIs refuse '%2F', '#', '?' and spaces in a prefix match
ROUTE_PATH_CHARS = r"^[-A-Za-z0-9/._~!$&()*+,;=:@]*$"
MSG_EXPOSE_WEB_ONLY = (
    "expose is for web apps: only they serve a port behind a Service (remove expose, or use "
    "profile: web)"
)
MSG_HOST_IP = "must be a DNS name, not an IP address: routes match host names"

_HOST = StringRule(
    HOSTNAME,
    "must be a lowercase DNS name such as app.example.com (letters, digits, '-' and '.'; no "
    "wildcard, port or scheme)",
    253,
    "Host name the app is reached at (the HTTPRoute's hostname, the Ingress rule's host).",
    extra=(
        (lambda v: not re.fullmatch(r"[0-9.]+", v), "!self.matches(r'^[0-9.]+$')", MSG_HOST_IP),
    ),
)
_ROUTE_PATH = StringRule(
    ROUTE_PATH,
    "must be / or an absolute, normalised path such as /api (no '//', '.' or '..' parts, no "
    "trailing '/')",
    1024,
    f"Path prefix routed to the app, matched by whole segments (/api matches /api and "
    f"/api/x, not /apix). Default {DEFAULT_EXPOSE_PATH}.",
    extra=(
        (
            lambda v: re.fullmatch(ROUTE_PATH_CHARS, v) is not None,
            f"self.matches(r'{ROUTE_PATH_CHARS}')",
            "may hold only letters, digits and -._~!$&()*+,;=:@ between '/' (no '%', '?', '#' "
            "or spaces)",
        ),
    ),
)
_ENTRY_CLASS = StringRule(
    DNS1123_SUBDOMAIN,
    "must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.'), the name of a "
    "Gateway or IngressClass",
    253,
    "The entry point: the IngressClass of the Ingress, or the Gateway (in the platform's "
    "Gateway namespace) the HTTPRoute attaches to. Default: the platform's.",
)
Hostname = Annotated[str, _HOST.length, _HOST.validator, _HOST.schema]
RoutePath = Annotated[str, _ROUTE_PATH.length, _ROUTE_PATH.validator, _ROUTE_PATH.schema]
EntryClass = Annotated[str, _ENTRY_CLASS.length, _ENTRY_CLASS.validator, _ENTRY_CLASS.schema]


class ExposeTLS(Base):
    """HTTPS for the host: the Secret (type kubernetes.io/tls) holding its certificate."""

    secret_name: SecretName = Field(
        description="Name of a kubernetes.io/tls Secret in the app's namespace with the host's "
        "certificate. Referenced, never read by the operator (the ingress controller reads "
        "it). Used by the Ingress; with the Gateway API, TLS is the Gateway listener's."
    )


class Expose(Base):
    """A way in from outside the cluster (web apps only): a Gateway API HTTPRoute where the
    cluster serves that API and the platform configured a Gateway, else an Ingress, to the
    app's Service. Its acceptance shows in status.route."""

    host: Hostname = Field(description="Host name the app is reached at, e.g. app.example.com.")
    path: RoutePath = Field(
        DEFAULT_EXPOSE_PATH,
        description="Path prefix routed to the app, matched by whole segments. Default "
        f"{DEFAULT_EXPOSE_PATH}.",
    )
    tls: ExposeTLS | None = Field(
        None,
        description="HTTPS with a certificate Secret (Ingress; a Gateway terminates TLS "
        "on its own listener).",
    )
    entry_class: EntryClass | None = Field(
        None,
        alias="class",
        description="The entry point: an IngressClass, or a Gateway in the platform's Gateway "
        "namespace. Default: the platform's (the operator's --ingress-class / --gateway).",
    )


# -- scheduled runs (profile: cron) --------------------------------------------------------

DEFAULT_CONCURRENCY_POLICY: Literal["Forbid"] = "Forbid"
DEFAULT_STARTING_DEADLINE_SECONDS = 3600
DEFAULT_SUCCESSFUL_HISTORY = 3
DEFAULT_FAILED_HISTORY = 1
DEFAULT_CRON_BACKOFF_LIMIT = 1
CRON_MACROS = ("yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly")
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: a name's number, for the range-order rule (months 1-12, days of the week 0-6, Sunday 0)
CRON_NAME_VALUES = {
    **{name: i + 1 for i, name in enumerate(_MONTH_NAMES)},
    **{name: i for i, name in enumerate(_DAY_NAMES)},
}


def _cron_field(value: str) -> str:
    """One field of a cron schedule: a comma-separated list of ``*`` or ``?``, a value or a
    range of values, each with an optional ``/step`` (1 to 99), as the API server's parser
    (robfig/cron's standard one) reads them."""
    item = rf"(\*|\?|({value})(-({value}))?)(/[1-9][0-9]?)?"
    return rf"{item}(,{item})*"


#: a five-field cron schedule or one of the named macros. Stricter than the API server (which
#: refuses less), never looser: values within each field's bounds (minute 0-59, hour 0-23, day
#: 1-31, month 1-12 or JAN-DEC, day of week 0-6 or SUN-SAT, names in any case), fields
#: separated by spaces, no ``@every`` and no ``TZ=``/``CRON_TZ=`` prefix (the API server
#: refuses a time zone in the schedule: it is ``timeZone``'s)
CRON_SCHEDULE = (
    "^(@("
    + "|".join(CRON_MACROS)
    + ")|"
    + " +".join(
        _cron_field(v)
        for v in (
            "[0-5]?[0-9]",
            "[01]?[0-9]|2[0-3]",
            "0?[1-9]|[12][0-9]|3[01]",
            "0?[1-9]|1[0-2]|(?i:" + "|".join(_MONTH_NAMES) + ")",
            "0?[0-6]|(?i:" + "|".join(_DAY_NAMES) + ")",
        )
    )
    + ")$"
)
_CRON_RANGE = r"[0-9A-Za-z]+-[0-9A-Za-z]+"
_CRON_SCHEDULE_RE = re.compile(CRON_SCHEDULE)
MSG_SCHEDULE = (
    "must be a cron schedule of five fields separated by spaces (minute 0-59, hour 0-23, day "
    "of month 1-31, month 1-12 or JAN-DEC, day of week 0-6 or SUN-SAT; each a *, a value, a "
    "range a-b or a list a,b, with an optional /step), e.g. '*/15 * * * *' or '0 3 * * MON-FRI', "
    "or one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually. A time zone "
    "goes in cron.timeZone, not in the schedule"
)
MSG_SCHEDULE_RANGE = (
    "a range in the schedule ends before it starts (e.g. 5-1 or FRI-MON): the API server "
    "refuses it; write it the other way round, or as a list"
)


def _cron_value(text: str) -> int:
    return int(text) if text.isdigit() else CRON_NAME_VALUES[text.lower()]


def _ranges_in_order(value: str) -> bool:
    """Every range a-b in a well-formed schedule has a <= b (True for a malformed one: the
    shape rule reports that)."""
    if not _CRON_SCHEDULE_RE.fullmatch(value):
        return True
    for found in re.findall(_CRON_RANGE, value):
        start, end = found.split("-")
        if _cron_value(start) > _cron_value(end):
            return False
    return True


def _cel_cron_value(var: str) -> str:
    names = ", ".join(f"'{k}': {v}" for k, v in CRON_NAME_VALUES.items())
    return f"({var}.matches('^[0-9]+$') ? int({var}) : {{{names}}}[{var}.lowerAscii()])"


_RANGE_START, _RANGE_END = "r.split('-')[0]", "r.split('-')[1]"
_SCHEDULE = StringRule(
    CRON_SCHEDULE,
    MSG_SCHEDULE,
    128,
    "When runs start: a five-field cron schedule (minute hour day-of-month month "
    "day-of-week) or a macro such as @hourly.",
    extra=(
        (
            _ranges_in_order,
            f"!self.matches(r'{CRON_SCHEDULE}') || self.findAll(r'{_CRON_RANGE}').all(r, "
            f"{_cel_cron_value(_RANGE_START)} <= {_cel_cron_value(_RANGE_END)})",
            MSG_SCHEDULE_RANGE,
        ),
    ),
)
#: the API server's own check of a CronJob's timeZone (each part of the name at most 14 of
#: these characters), a little stricter: no part starts with '.', so '..' cannot climb out of
#: the zone database. Whether the zone exists only the API server's database can say: an
#: unknown one is refused when the operator applies the CronJob (Stalled, with its message).
TIME_ZONE = r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,13}(/[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,13})*$"
MSG_TIME_ZONE = (
    "must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC (parts of "
    "at most 14 letters, digits, '.', '_', '+' or '-', separated by '/')"
)
MSG_TIME_ZONE_LOCAL = (
    "must be an explicit IANA time zone name: Local means the controller's own zone, which "
    "the API server refuses"
)
_TIME_ZONE = StringRule(
    TIME_ZONE,
    MSG_TIME_ZONE,
    64,
    "IANA time zone the schedule is read in, e.g. Europe/Berlin. Default: the "
    "kube-controller-manager's zone (UTC on most clusters).",
    extra=(
        (
            lambda v: v.lower() != "local",
            "self.lowerAscii() != 'local'",
            MSG_TIME_ZONE_LOCAL,
        ),
    ),
)
Schedule = Annotated[str, _SCHEDULE.length, _SCHEDULE.validator, _SCHEDULE.schema]
TimeZone = Annotated[str, _TIME_ZONE.length, _TIME_ZONE.validator, _TIME_ZONE.schema]


class Cron(Base):
    """When and how a scheduled app runs (``profile: cron``): a CronJob starts a Job at each
    scheduled time; each run is one pod with the app's image, env, Secrets, resources and pod
    hardening that runs to its end (restartPolicy Never)."""

    schedule: Schedule = Field(
        description="When runs start: five fields (minute hour day-of-month month "
        "day-of-week, e.g. '0 3 * * *' or '*/15 * * * MON-FRI') or a macro (@hourly, @daily, "
        "@midnight, @weekly, @monthly, @yearly, @annually). Required."
    )
    time_zone: TimeZone | None = Field(
        None,
        description="IANA time zone the schedule is read in, e.g. Europe/Berlin. Default: the "
        "kube-controller-manager's zone (UTC on most clusters).",
    )
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = Field(
        DEFAULT_CONCURRENCY_POLICY,
        description="What happens when a run is due while the last one still runs. Forbid "
        "(default): the new run is skipped. Replace: the running one is stopped. Allow: both "
        "run.",
    )
    starting_deadline_seconds: int = Field(
        DEFAULT_STARTING_DEADLINE_SECONDS,
        ge=10,
        le=604800,
        description="A run that could not start within this many seconds of its time (the "
        "controller was down, or Forbid held it back) is skipped. At least 10: the CronJob "
        f"controller looks every 10 s. Default {DEFAULT_STARTING_DEADLINE_SECONDS}.",
    )
    successful_jobs_history_limit: int = Field(
        DEFAULT_SUCCESSFUL_HISTORY,
        ge=0,
        le=100,
        description="Succeeded runs (Jobs and their pods, for their logs) kept. Default "
        f"{DEFAULT_SUCCESSFUL_HISTORY}.",
    )
    failed_jobs_history_limit: int = Field(
        DEFAULT_FAILED_HISTORY,
        ge=0,
        le=100,
        description=f"Failed runs kept. Default {DEFAULT_FAILED_HISTORY}. The app's status "
        "keeps the last run's result after its Job is gone.",
    )
    suspend: bool = Field(
        False,
        description="true: no new runs start (a running one finishes). Default false.",
    )
    active_deadline_seconds: int | None = Field(
        None,
        ge=1,
        le=2592000,
        description="Longest one run may take, retries included (the Job's "
        "activeDeadlineSeconds); then it is stopped and counts as failed. Default: no limit "
        "(with Forbid, a hung run holds back the next ones: set one).",
    )
    backoff_limit: int = Field(
        DEFAULT_CRON_BACKOFF_LIMIT,
        ge=0,
        le=10,
        description="Failed attempts of one run retried before it counts as failed (the "
        f"Job's backoffLimit). Default {DEFAULT_CRON_BACKOFF_LIMIT}: one retry, for a "
        "dependency that was briefly unreachable.",
    )


#: a transition rule (it compares with the stored object, so it has no pydantic twin: it runs
#: on the API server only, on every update of the spec, the /scale subresource's included)
MSG_REPLICAS_AUTOSCALED = (
    "replicas cannot be set or changed while spec.autoscaling is set: the "
    "HorizontalPodAutoscaler owns the replica count. Change spec.autoscaling.minReplicas or "
    "maxReplicas instead, or remove spec.autoscaling (setting replicas in the same change) to "
    "scale by hand"
)
REPLICAS_TRANSITION_RULE = cel(
    "!has(self.autoscaling) || !has(oldSelf.autoscaling) || !has(self.replicas) || "
    "(has(oldSelf.replicas) && self.replicas == oldSelf.replicas)",
    MSG_REPLICAS_AUTOSCALED,
    ".replicas",
)


# -- cross-field rules on the spec -------------------------------------------------------------

RuleProblem = tuple[tuple[str | int, ...], str]


@dataclass(frozen=True)
class Rule:
    """One spec-level rule: the Python check and its CEL twin, with the same message."""

    name: str
    cel: str
    message: str
    field_path: str | None
    check: Callable[[PythonAppSpec], list[RuleProblem]]

    def schema(self) -> dict[str, str]:
        """The ``x-kubernetes-validations`` entry."""
        return cel(self.cel, self.message, self.field_path)


_PROFILE = "(has(self.profile) ? self.profile : 'web')"
_GRACE = f"(has(self.terminationGracePeriodSeconds) ? self.terminationGracePeriodSeconds : {DEFAULT_GRACE_SECONDS})"  # noqa: E501
_PRESTOP = (
    "(has(self.preStopSleepSeconds) ? self.preStopSleepSeconds : "
    f"({_PROFILE} == 'web' ? {DEFAULT_PRESTOP_WEB_SECONDS} : 0))"
)


def _mount(var: str) -> str:
    return f"(has({var}.mountPath) ? {var}.mountPath : '{SECRETS_ROOT}/' + {var}.name)"


def _config_mount(var: str) -> str:
    return f"(has({var}.mountPath) ? {var}.mountPath : '{CONFIG_ROOT}/' + {var}.name)"


def _apart(a: str, b: str) -> str:
    """CEL: mount paths ``a`` and ``b`` differ and neither holds the other."""
    return f"({a} != {b} && !{a}.startsWith({b} + '/') && !{b}.startsWith({a} + '/'))"


def _no_http_probe(kind: str) -> str:
    return f"(!has(self.probes.{kind}) || !has(self.probes.{kind}.path))"


def _rule_port_web_only(spec: PythonAppSpec) -> list[RuleProblem]:
    if spec.profile == "worker" and spec.port is not None:
        return [(("port",), MSG_PORT_WORKER)]
    return []


def _rule_worker_probes(spec: PythonAppSpec) -> list[RuleProblem]:
    if spec.profile != "worker":
        return []
    return [
        (("probes", kind, "path"), MSG_WORKER_HTTP_PROBE)
        for kind, probe in spec.probes.items()
        if probe.path is not None
    ]


def _rule_unique_env(spec: PythonAppSpec) -> list[RuleProblem]:
    seen = {e.name for e in spec.env}
    problems: list[RuleProblem] = []
    for i, secret in enumerate(spec.secrets):
        for j, var in enumerate(secret.env):
            if var.name in seen:
                problems.append((("secrets", i, "env", j, "name"), MSG_ENV_DUP))
            seen.add(var.name)
    return problems


def _rule_unique_config_env(spec: PythonAppSpec) -> list[RuleProblem]:
    seen = {e.name for e in spec.env} | {v.name for s in spec.secrets for v in s.env}
    problems: list[RuleProblem] = []
    for i, config in enumerate(spec.config):
        for j, var in enumerate(config.env):
            if var.name in seen:
                problems.append((("config", i, "env", j, "name"), MSG_ENV_DUP))
            seen.add(var.name)
    return problems


def _overlap(path: str, other: str) -> bool:
    return path == other or path.startswith(other + "/") or other.startswith(path + "/")


def _rule_config_mounts(spec: PythonAppSpec) -> list[RuleProblem]:
    problems: list[RuleProblem] = []
    taken = [s.effective_mount_path for s in spec.secrets]
    for i, config in enumerate(spec.config):
        path = config.effective_mount_path
        if any(_overlap(path, other) for other in taken):
            problems.append((("config", i, "mountPath"), MSG_MOUNTS))
        taken.append(path)
    return problems


def _rule_mounts(spec: PythonAppSpec) -> list[RuleProblem]:
    problems: list[RuleProblem] = []
    paths = [s.effective_mount_path for s in spec.secrets]
    for i, path in enumerate(paths):
        for other in paths[:i]:
            if path == other or path.startswith(other + "/") or other.startswith(path + "/"):
                problems.append((("secrets", i, "mountPath"), MSG_MOUNTS))
                break
    return problems


def _rule_grace(spec: PythonAppSpec) -> list[RuleProblem]:
    pre = spec.effective_prestop_seconds
    if pre > 0 and spec.termination_grace_period_seconds <= pre:
        return [(("terminationGracePeriodSeconds",), MSG_GRACE)]
    return []


def _rule_expose_web_only(spec: PythonAppSpec) -> list[RuleProblem]:
    if spec.profile != "web" and spec.expose is not None:
        return [(("expose",), MSG_EXPOSE_WEB_ONLY)]
    return []


MSG_PORT_WORKER = "port is for web apps: workers serve no port (remove port or use profile: web)"
MSG_WORKER_HTTP_PROBE = (
    "workers serve no port, so their probes cannot use path: give the probe a command (exec)"
)
MSG_ENV_DUP = (
    "environment variable names must be unique across env, secrets[].env and config[].env: "
    "rename one of them"
)
MSG_MOUNTS = (
    "mount paths of secrets and config must be unique and must not contain one another "
    f"(defaults {SECRETS_ROOT}/<name> and {CONFIG_ROOT}/<name>): choose a separate mountPath"
)
MSG_GRACE = (
    "terminationGracePeriodSeconds must be larger than preStopSleepSeconds "
    f"(web apps drain for {DEFAULT_PRESTOP_WEB_SECONDS}s by default), or the drain eats the "
    "whole grace period: raise it or lower preStopSleepSeconds"
)

#: env values, command and args together, in UTF-8 bytes (see MSG_TEXT_BUDGET)
TEXT_BUDGET = 128 * 1024
MSG_TEXT_BUDGET = (
    f"env values, command and args together must be at most {TEXT_BUDGET // 1024} KiB "
    "(UTF-8): the API server stores no object over 1.5 MiB (it fails with a 500), kubectl "
    "apply keeps a copy of the object in a 256 KiB annotation, and every pod carries them: "
    "put large configuration in a Secret or ConfigMap mounted as files"
)


def _text_bytes(spec: PythonAppSpec) -> int:
    texts = [e.value for e in spec.env] + list(spec.command or []) + list(spec.args or [])
    return sum(len(t.encode()) for t in texts)


def _rule_text_budget(spec: PythonAppSpec) -> list[RuleProblem]:
    if _text_bytes(spec) > TEXT_BUDGET:
        return [((), MSG_TEXT_BUDGET)]
    return []


def _bytes_sum(field: str, item: str) -> str:
    return f"(has(self.{field}) ? self.{field}.map(x, {item}).sum() : 0)"


MSG_CRON_REQUIRED = (
    "profile cron needs spec.cron with a schedule, e.g. cron: {schedule: '0 3 * * *'}"
)
MSG_CRON_PROFILE = "cron is for profile: cron (set profile: cron, or remove cron)"
#: spec fields a scheduled app refuses, with why (field name as written -> reason)
CRON_REFUSED: dict[str, str] = {
    "replicas": "each run is one pod; whether runs may overlap is cron.concurrencyPolicy",
    "port": "a scheduled run serves no port",
    "probes": "a run is not probed: it runs to its end, bounded by cron.activeDeadlineSeconds",
    "autoscaling": "runs are started by the schedule, not scaled",
    "disruption": "no PodDisruptionBudget guards a run (cron.backoffLimit retries one)",
    "preStopSleepSeconds": "a run serves no traffic to drain",
    "migrate": "the migrations gate holds a Deployment's rollout back: run migrations from "
    "the web app that owns the schema",
}


def msg_cron_refused(field: str) -> str:
    """Why ``field`` is refused on a scheduled app."""
    return f"{field} does not apply to profile: cron ({CRON_REFUSED[field]}): remove it"


def _rule_cron(spec: PythonAppSpec) -> list[RuleProblem]:
    if spec.profile == "cron" and spec.cron is None:
        return [(("cron",), MSG_CRON_REQUIRED)]
    if spec.profile != "cron" and spec.cron is not None:
        return [(("cron",), MSG_CRON_PROFILE)]
    return []


def _cron_refuses(field: str) -> Rule:
    attribute = re.sub(r"(?<!^)([A-Z])", r"_\1", field).lower()

    def check(spec: PythonAppSpec) -> list[RuleProblem]:
        if spec.profile == "cron" and attribute in spec.model_fields_set:
            return [((field,), msg_cron_refused(field))]
        return []

    return Rule(
        f"cron-refuses-{field}",
        f"!({_PROFILE} == 'cron' && has(self.{field}))",
        msg_cron_refused(field),
        f".{field}",
        check,
    )


SPEC_RULES: tuple[Rule, ...] = (
    Rule(
        "cron-needs-schedule",
        f"{_PROFILE} != 'cron' || has(self.cron)",
        MSG_CRON_REQUIRED,
        ".cron",
        lambda spec: [p for p in _rule_cron(spec) if p[1] == MSG_CRON_REQUIRED],
    ),
    Rule(
        "cron-only-for-cron",
        f"!has(self.cron) || {_PROFILE} == 'cron'",
        MSG_CRON_PROFILE,
        ".cron",
        lambda spec: [p for p in _rule_cron(spec) if p[1] == MSG_CRON_PROFILE],
    ),
    *(_cron_refuses(field) for field in CRON_REFUSED),
    Rule(
        "port-web-only",
        f"!({_PROFILE} == 'worker' && has(self.port))",
        MSG_PORT_WORKER,
        ".port",
        _rule_port_web_only,
    ),
    Rule(
        "worker-exec-probes",
        f"{_PROFILE} != 'worker' || !has(self.probes) || ("
        + " && ".join(_no_http_probe(k) for k in ("liveness", "readiness", "startup"))
        + ")",
        MSG_WORKER_HTTP_PROBE,
        ".probes",
        _rule_worker_probes,
    ),
    Rule(
        "unique-env",
        "!has(self.secrets) || self.secrets.all(s, !has(s.env) || s.env.all(v, "
        "(!has(self.env) || !self.env.exists(e, e.name == v.name)) && "
        "self.secrets.filter(t, has(t.env) && t.env.exists(w, w.name == v.name)).size() == 1))",
        MSG_ENV_DUP,
        ".secrets",
        _rule_unique_env,
    ),
    Rule(
        "unique-config-env",
        "!has(self.config) || self.config.all(c, !has(c.env) || c.env.all(v, "
        "(!has(self.env) || !self.env.exists(e, e.name == v.name)) && "
        "(!has(self.secrets) || !self.secrets.exists(s, has(s.env) && "
        "s.env.exists(w, w.name == v.name))) && "
        "self.config.filter(t, has(t.env) && t.env.exists(w, w.name == v.name)).size() == 1))",
        MSG_ENV_DUP,
        ".config",
        _rule_unique_config_env,
    ),
    Rule(
        "secret-mounts",
        "!has(self.secrets) || self.secrets.all(a, self.secrets.all(b, a.name == b.name || ("
        f"{_mount('a')} != {_mount('b')} && !{_mount('a')}.startsWith({_mount('b')} + '/') && "
        f"!{_mount('b')}.startsWith({_mount('a')} + '/'))))",
        MSG_MOUNTS,
        ".secrets",
        _rule_mounts,
    ),
    Rule(
        "config-mounts",
        "!has(self.config) || self.config.all(a, self.config.all(b, a.name == b.name || "
        f"{_apart(_config_mount('a'), _config_mount('b'))}) && (!has(self.secrets) || "
        f"self.secrets.all(s, {_apart(_config_mount('a'), _mount('s'))})))",
        MSG_MOUNTS,
        ".config",
        _rule_config_mounts,
    ),
    Rule(
        "grace-covers-prestop",
        f"{_PRESTOP} == 0 || {_GRACE} > {_PRESTOP}",
        MSG_GRACE,
        ".terminationGracePeriodSeconds",
        _rule_grace,
    ),
    Rule(
        "expose-web-only",
        f"{_PROFILE} == 'web' || !has(self.expose)",
        MSG_EXPOSE_WEB_ONLY,
        ".expose",
        _rule_expose_web_only,
    ),
    Rule(
        "text-budget",
        " + ".join(
            (
                _bytes_sum("env", "has(x.value) ? bytes(x.value).size() : 0"),
                _bytes_sum("command", "bytes(x).size()"),
                _bytes_sum("args", "bytes(x).size()"),
            )
        )
        + f" <= {TEXT_BUDGET}",
        MSG_TEXT_BUDGET,
        None,
        _rule_text_budget,
    ),
)


#: the API server's own words first ("Duplicate value"), then what to do
MSG_DUPLICATE_NAME = (
    "Duplicate value: an earlier item has the same name; names in this list must be unique"
)


def _duplicate_names(spec: PythonAppSpec) -> list[RuleProblem]:
    """Repeated names in ``env``, ``secrets``, ``imagePullSecrets`` and ``config``: the CRD
    declares these lists as maps keyed by name (:data:`LIST_MAP_BY_NAME`), so the API server
    refuses a repeated name; say so here too. (A name repeated in one secret's ``env`` is the
    unique-env rule's.)"""
    problems: list[RuleProblem] = []
    lists: tuple[tuple[str, list[str]], ...] = (
        ("env", [e.name for e in spec.env]),
        ("secrets", [s.name for s in spec.secrets]),
        ("imagePullSecrets", [s.name for s in spec.image_pull_secrets]),
        ("config", [c.name for c in spec.config]),
    )
    for field, names in lists:
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                problems.append(((field, i, "name"), MSG_DUPLICATE_NAME))
            seen.add(name)
    return problems


def _rule_error(problems: list[RuleProblem]) -> PydanticCustomError:
    """One pydantic error carrying every problem with its own path (see :func:`problems_of`)."""
    summary = "; ".join(
        (".".join(str(p) for p in path) + ": " if path else "") + msg for path, msg in problems
    )
    return PydanticCustomError("rules", "{summary}", {"summary": summary, "problems": problems})


# -- the spec ----------------------------------------------------------------------------------


class PythonAppSpec(Base):
    """Desired state of a Python app: what runs (a digest-pinned image), how it is reached and
    checked, what it may use, and the Secrets it references."""

    model_config = ConfigDict(
        json_schema_extra=_schema_extra(*(r.schema() for r in SPEC_RULES), REPLICAS_TRANSITION_RULE)
    )

    image: Image = Field(
        description="Container image pinned by digest: "
        f"{image.EXPECTED_FORM}. The tag 'latest' is refused even with a digest."
    )
    profile: Literal["web", "worker", "cron"] = Field(
        "web",
        description="web (default): serves HTTP on port, gets HTTP probes, a Service and a "
        "preStop drain. worker: serves no port, no Service, only exec probes. cron: runs on "
        "spec.cron's schedule (a CronJob): no port, probes, Service or replicas.",
    )
    replicas: int = Field(
        DEFAULT_REPLICAS,
        ge=0,
        le=MAX_REPLICAS,
        description=f"Number of pods. Default {DEFAULT_REPLICAS}. Not applied while "
        "autoscaling is set (the HorizontalPodAutoscaler owns the count, and replicas cannot "
        "be changed then); applied again when autoscaling is removed.",
    )
    command: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        None, max_length=64, description="Overrides the image's ENTRYPOINT."
    )
    args: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        None, max_length=256, description="Overrides the image's CMD."
    )
    port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description=f"Port the app listens on (web only). Default {DEFAULT_PORT}.",
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        description="Plain environment variables (no secrets: use secrets[].env).",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    secrets: list[SecretRef] = Field(
        default_factory=list,
        max_length=MAX_SECRETS,
        description="Secrets mounted read-only as files (default /run/secrets/<name>), "
        "optionally with keys as env vars. Referenced: no value is copied into the app's "
        "objects (the operator reads them only to check them and hash them for rotation).",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    image_pull_secrets: list[ImagePullSecret] = Field(
        default_factory=list,
        max_length=MAX_IMAGE_PULL_SECRETS,
        description="Secrets with credentials for the image's registry (kubernetes.io/"
        "dockerconfigjson), put on the pods' imagePullSecrets (the migration Job's too). "
        "Referenced, never read: the operator checks that each exists; a change to one "
        "restarts nothing (it is used at pull time). Default: none.",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    config: list[ConfigRef] = Field(
        default_factory=list,
        max_length=MAX_CONFIG,
        description="ConfigMaps mounted read-only as files (default /etc/config/<name>), "
        "optionally with keys as env vars; a change to one restarts the pods "
        "(rotation: restart, the default) or not (none).",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    resources: Resources = Field(
        description="Requests and limits; limits.memory is required.",
    )
    probes: Probes = Field(
        default_factory=Probes, description="Liveness, readiness and startup probes."
    )
    termination_grace_period_seconds: int = Field(
        DEFAULT_GRACE_SECONDS,
        ge=0,
        le=3600,
        description="Seconds between SIGTERM and SIGKILL, so in-flight work can finish. "
        f"Default {DEFAULT_GRACE_SECONDS}.",
    )
    pre_stop_sleep_seconds: int | None = Field(
        None,
        ge=0,
        le=600,
        description="Seconds a terminating pod keeps serving while endpoints drain, before "
        f"SIGTERM. Default {DEFAULT_PRESTOP_WEB_SECONDS} for web, 0 for worker.",
    )
    security_context: SecurityContext = Field(
        default_factory=SecurityContext,
        description="Numeric user, group and fsGroup (all > 0; default 10001).",
    )
    automount_service_account_token: bool = Field(
        False,
        description="Mount an API token into the pods. Off by default: Python apps rarely call "
        "the Kubernetes API.",
    )
    tmp_size_limit: Bytes = Field(
        DEFAULT_TMP_SIZE,
        description="Size limit of the writable /tmp (the root filesystem is read-only). "
        f"Default {DEFAULT_TMP_SIZE}.",
    )
    autoscaling: Autoscaling | None = Field(
        None,
        description="A HorizontalPodAutoscaler owns the replica count between minReplicas and "
        "maxReplicas (CPU 80% of the request when no target is set). Switching it on or off "
        "keeps the running pods; while it is on, replicas is not applied.",
    )
    disruption: Disruption | None = Field(
        None,
        description="The PodDisruptionBudget (maxUnavailable, never blocking a drain). "
        "Default: maxUnavailable 1 when more than one pod runs; none at one pod.",
    )
    migrate: Migrate | None = Field(
        None,
        description="A migrations gate: a Job runs this command with the new image (and the "
        "app's Secrets, env and security settings) before the Deployment moves to it; on "
        "failure the running version keeps serving. Runs again for a new image, a changed "
        "command, and a rollback to an earlier image.",
    )
    expose: Expose | None = Field(
        None,
        description="A way in for web apps: host, path and TLS of an HTTPRoute (where the "
        "cluster serves the Gateway API and the platform set a Gateway) or else an Ingress, to "
        "the app's Service. Its acceptance shows in status.route.",
    )

    cron: Cron | None = Field(
        None,
        description="The schedule and run settings of a scheduled app (profile: cron, where it "
        "is required; refused on other profiles).",
    )

    @property
    def effective_port(self) -> int | None:
        """The served port, or None for workers and scheduled apps."""
        if self.profile != "web":
            return None
        return self.port or DEFAULT_PORT

    @property
    def min_pods(self) -> int:
        """The fewest pods the app runs when healthy: autoscaling.minReplicas, or replicas."""
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas

    @property
    def wants_disruption_budget(self) -> bool:
        """A PodDisruptionBudget: asked for, or by default when more than one pod runs (never
        for a scheduled app: its runs are Jobs)."""
        if self.profile == "cron":
            return False
        enabled = self.disruption.enabled if self.disruption else None
        return self.min_pods > 1 if enabled is None else enabled

    @property
    def effective_prestop_seconds(self) -> int:
        """preStop drain, default applied by profile."""
        if self.pre_stop_sleep_seconds is not None:
            return self.pre_stop_sleep_seconds
        return DEFAULT_PRESTOP_WEB_SECONDS if self.profile == "web" else 0

    @model_validator(mode="after")
    def _cross_field_rules(self) -> PythonAppSpec:
        problems = _duplicate_names(self)
        problems += [p for rule in SPEC_RULES for p in rule.check(self)]
        if problems:
            raise _rule_error(problems)
        return self


# -- status ------------------------------------------------------------------------------------


class MigrationStatus(Base):
    """The last migrations gate that finished (spec.migrate): kept after its Job is cleaned up."""

    image: str = Field(max_length=1024, description="Image the migration ran with.")
    result: Literal["Succeeded", "Failed"] = Field(description="Succeeded or Failed.")
    finished_at: str | None = Field(None, description="When the Job finished (RFC 3339).")
    job: str | None = Field(None, max_length=63, description="Name of the migration Job.")
    message: str | None = Field(
        None, max_length=4096, description="Why it failed (the Job's reason, an exit code)."
    )


class RouteStatus(Base):
    """The app's route (spec.expose) as the cluster answered it: accepted by the Gateway's
    controller (the HTTPRoute's Accepted and ResolvedRefs conditions), or given an address by
    the ingress controller (the Ingress's load balancer). Unknown until a controller answers;
    only an explicit refusal makes the app Ready=False (reason RouteNotAccepted)."""

    kind: Literal["HTTPRoute", "Ingress"] = Field(description="HTTPRoute or Ingress.")
    name: str = Field(max_length=253, description="Name of the route object.")
    accepted: Literal["True", "False", "Unknown"] = Field(
        description="True: a controller serves the route. False: it refused it (the message "
        "says why). Unknown: no controller has answered yet."
    )
    reason: str = Field(max_length=1024, description="CamelCase reason, a controller's own.")
    message: str = Field("", max_length=32768, description="Human-readable detail.")
    address: str | None = Field(
        None, max_length=1024, description="The load balancer's address (Ingress)."
    )


class CronRun(Base):
    """One run of a scheduled app: its Job and how it went (kept after the Job is gone)."""

    job: str = Field(max_length=253, description="Name of the run's Job.")
    result: Literal["Running", "Succeeded", "Failed", "Stopped"] = Field(
        description="Running, Succeeded, Failed, or Stopped (its Job was deleted before it "
        "ended: by a person, or by concurrencyPolicy Replace)."
    )
    started_at: str | None = Field(None, description="When the Job was created (RFC 3339).")
    finished_at: str | None = Field(None, description="When the Job ended (RFC 3339).")
    message: str | None = Field(
        None, max_length=4096, description="Why it failed (the Job's reason, an exit code)."
    )


class CronStatus(Base):
    """What the CronJob of a scheduled app (profile: cron) reports, and its last run."""

    last_schedule_time: str | None = Field(
        None, description="When a run was last scheduled (the CronJob's lastScheduleTime)."
    )
    last_successful_time: str | None = Field(
        None, description="When a run last succeeded (the CronJob's lastSuccessfulTime)."
    )
    active: int | None = Field(None, ge=0, description="Runs in progress now.")
    suspended: bool | None = Field(None, description="True while spec.cron.suspend holds runs.")
    last_run: CronRun | None = Field(
        None, description="The newest run and its result (Running, Succeeded or Failed)."
    )


class Condition(Base):
    """A kstatus condition (Ready, Reconciling, Stalled)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(max_length=316, description="Ready, Reconciling or Stalled.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(max_length=1024, description="CamelCase reason for the last transition.")
    message: str = Field("", max_length=32768, description="Human-readable detail.")
    last_transition_time: str = Field(
        description="When status last changed (RFC 3339); stable while status stays the same."
    )
    observed_generation: int | None = Field(
        None, ge=0, description="Generation of the spec this condition was computed from."
    )


class PythonAppStatus(Base):
    """Observed state, following kstatus conventions so Flux and Argo CD can read it."""

    observed_generation: int | None = Field(
        None, description="metadata.generation this status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling and Stalled conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    replicas: int | None = Field(None, description="Pods of the Deployment.")
    ready_replicas: int | None = Field(None, description="Pods passing readiness.")
    updated_replicas: int | None = Field(None, description="Pods running the current template.")
    available_replicas: int | None = Field(None, description="Pods ready for minReadySeconds.")
    image: str | None = Field(None, description="Image of the Deployment's pod template.")
    short_image: str | None = Field(None, description="Short form of image, for display.")
    ready: str | None = Field(None, description="ready/desired pods, for display (e.g. 2/2).")
    selector: str | None = Field(
        None,
        description="Label selector of the app's pods, as a string (the /scale subresource's "
        "labelSelectorPath).",
    )
    migration: MigrationStatus | None = Field(
        None, description="The last migrations gate that finished (spec.migrate)."
    )
    route: RouteStatus | None = Field(
        None, description="The route of spec.expose, and whether a controller accepted it."
    )

    cron: CronStatus | None = Field(
        None, description="A scheduled app's CronJob and its last run (profile: cron)."
    )


# -- the object --------------------------------------------------------------------------------

_NAME_RE = re.compile(DNS1035_LABEL)


class ObjectMeta(BaseModel):
    """The parts of metadata the operator reads; the rest passes through untouched."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(max_length=63)
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_is_label(cls, name: str) -> str:
        # a field validator, so the problem is reported at metadata.name, not metadata
        if not _NAME_RE.fullmatch(name):
            raise PydanticCustomError("name", MSG_NAME)
        return name


class PythonApp(BaseModel):
    """A whole PythonApp object as read from YAML or the API server."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    api_version: Literal["pythonapp.dev/v1alpha1"] = Field(alias="apiVersion")  # = API_VERSION
    kind: Literal["PythonApp"]
    metadata: ObjectMeta
    spec: PythonAppSpec
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """metadata.name."""
        return self.metadata.name

    @property
    def namespace(self) -> str | None:
        """metadata.namespace (None when the file leaves it to the client)."""
        return self.metadata.namespace
