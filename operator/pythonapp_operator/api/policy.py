"""The platform policy (``PythonAppPolicy``, ``pythonapp.dev/v1alpha1``) as strict pydantic models.

What the platform team says once for the whole cluster, read by three readers that must agree:
the operator (its defaults when rendering, and ``Stalled``/``PolicyViolation`` for an app a new
policy no longer admits), the ValidatingAdmissionPolicy that takes it as its params
(:mod:`.policyadmission`: refused at ``kubectl apply``), and ``pythonapp validate|render
--policy FILE`` offline. The rules themselves live in :mod:`..platformpolicy`; this module is
the API, and its CRD schema is generated from it like the PythonApp's (:func:`.crd.policy_crd`).

Why one cluster-scoped object named ``cluster`` (as OpenShift names its cluster-wide config
objects): an admission policy's binding names its params object (``paramRef.name``), so the
policy the API server enforces is one object, and the operator reads that same one. Several
policies merged by some precedence would be a second language to learn and to get wrong; a
namespace-level policy is a later addition (a binding per namespace selector) if asked for.
The CRD refuses any other name, so a second object cannot be mistaken for the policy.

Every section is optional, and an absent one says nothing: an empty policy (or none) admits
what the PythonApp schema admits and renders the operator's built-in defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import GROUP, VERSION
from .models import (
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    LIST_MAP_BY_NAME,
    MAX_IMAGE_PULL_SECRETS,
    Base,
    Bytes,
    ImagePullSecret,
    Quantity,
    ResourceList,
    StringRule,
    cel,
)

POLICY_KIND = "PythonAppPolicy"
POLICY_PLURAL = "pythonapppolicies"
POLICY_API_VERSION = f"{GROUP}/{VERSION}"
#: the one policy object the operator reads and the admission binding names (module doc)
POLICY_NAME = "cluster"
MAX_REGISTRIES = 32
MAX_NAMESPACES = 256

MSG_POLICY_NAME = (
    f"must be {POLICY_NAME!r}: the operator reads, and the admission policy's binding names, "
    f"the one PythonAppPolicy called {POLICY_NAME}"
)

_REGISTRY = StringRule(
    r"^[a-z0-9][-a-z0-9._:]*(/[-a-z0-9._]+)*/$",
    "must be a registry prefix ending in '/', e.g. ghcr.io/acme/ or registry.example.com/ "
    "(without the '/', ghcr.io/acme would admit ghcr.io/acme-other/ too)",
    255,
    "A prefix of spec.image: a registry host, optionally with a path, ending in '/'.",
)
RegistryPrefix = Annotated[str, _REGISTRY.length, _REGISTRY.validator, _REGISTRY.schema]

_NAMESPACE = StringRule(
    DNS1123_LABEL,
    "must be a namespace name (a DNS-1123 label: lowercase letters, digits and '-')",
    63,
    "A namespace name.",
)
NamespaceName = Annotated[str, _NAMESPACE.length, _NAMESPACE.validator, _NAMESPACE.schema]

_OBJECT_NAME = StringRule(
    DNS1123_SUBDOMAIN,
    "must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')",
    253,
    "An object name.",
)
ObjectName = Annotated[str, _OBJECT_NAME.length, _OBJECT_NAME.validator, _OBJECT_NAME.schema]


class DefaultLimits(Base):
    """Default limits: cpu and ephemeral-storage. Not memory: every app sets limits.memory
    (the PythonApp schema requires it), so a default would never apply; leaving it out also
    keeps this CRD within Kubernetes 1.30's CEL cost budget (kubectl-validate measured 1.03x
    over with it)."""

    cpu: Quantity | None = Field(None, description="CPU, e.g. 500m or 1.")
    ephemeral_storage: Bytes | None = Field(
        None,
        alias="ephemeral-storage",
        description="Local scratch space (logs, /tmp, writable layers), e.g. 512Mi.",
    )

    def get(self, resource: str) -> str | None:
        """Value by its Kubernetes name (memory: never set)."""
        return {"cpu": self.cpu, "ephemeral-storage": self.ephemeral_storage}.get(resource)


class ResourcePolicy(Base):
    """Default and maximum resources. A default applies where the app sets no value of its
    own (memory's request still defaults to the app's memory limit unless ``defaultRequests``
    says otherwise), and never goes above the app's own limit or the maximum. A maximum
    refuses an app whose own request or limit is above it."""

    default_requests: ResourceList | None = Field(
        None,
        description="Requests for the apps that set none (built-in: cpu 100m, memory equal "
        "to its limit, ephemeral-storage 128Mi).",
    )
    default_limits: DefaultLimits | None = Field(
        None,
        description="Limits for the apps that set none (built-in: cpu 1, ephemeral-storage "
        "512Mi; apps always set limits.memory).",
    )
    max_limits: ResourceList | None = Field(
        None,
        description="The most an app may ask for, per resource: its requests and limits must "
        "not be above these (rule maxLimits).",
    )


class GatewayRef(Base):
    """A Gateway HTTPRoutes attach to (their parentRef)."""

    namespace: NamespaceName = Field(description="The Gateway's namespace.")
    name: ObjectName = Field(description="The Gateway's name.")


class ExposePolicy(Base):
    """Who may expose apps (``spec.expose``) and where their routes attach. The operator's
    options (--gateway, --ingress-class, --route-api), where set, win over the values here:
    an option is the installation's explicit choice; the policy fills what they leave
    unset."""

    allowed_namespaces: list[NamespaceName] | None = Field(
        None,
        max_length=MAX_NAMESPACES,
        description="Namespaces whose apps may set spec.expose (rule "
        "expose.allowedNamespaces). Absent: every namespace; empty: none.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    gateway: GatewayRef | None = Field(
        None,
        description="The Gateway HTTPRoutes attach to where the cluster serves the Gateway "
        "API (as --gateway).",
    )
    ingress_class: ObjectName | None = Field(
        None,
        description="The IngressClass of Ingresses whose app names none (as --ingress-class); "
        "absent: the cluster's default class.",
    )
    route_api: Literal["auto", "ingress"] | None = Field(
        None,
        description="auto (HTTPRoute where served and a Gateway is set, else Ingress) or "
        "ingress (always an Ingress), as --route-api.",
    )


class PythonAppPolicySpec(Base):
    """What the platform says once for every PythonApp of the cluster. Each section is
    optional; an absent one says nothing."""

    allowed_registries: list[RegistryPrefix] | None = Field(
        None,
        max_length=MAX_REGISTRIES,
        description="Prefixes spec.image must start with, e.g. ghcr.io/acme/ (rule "
        "allowedRegistries). Absent: any registry.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    resources: ResourcePolicy | None = Field(
        None, description="Default and maximum requests and limits."
    )
    image_pull_secrets: list[ImagePullSecret] = Field(
        default_factory=list,
        max_length=MAX_IMAGE_PULL_SECRETS,
        description="Pull Secrets every app's pods get, after the app's own (a Secret of that "
        "name in each app's namespace, e.g. copied there by the platform). Not checked for "
        "existence: the kubelet pulls without a missing one.",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    expose: ExposePolicy | None = Field(
        None, description="Who may expose apps, and where their routes attach."
    )


class PolicyMeta(BaseModel):
    """The metadata the policy's readers look at; the rest passes through."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str

    @field_validator("name")
    @classmethod
    def _the_one_name(cls, name: str) -> str:
        if name != POLICY_NAME:
            raise ValueError(MSG_POLICY_NAME)
        return name


class PythonAppPolicy(BaseModel):
    """A whole PythonAppPolicy object as read from YAML or the API server."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    api_version: Literal["pythonapp.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["PythonAppPolicy"]
    metadata: PolicyMeta
    spec: PythonAppPolicySpec = Field(default_factory=PythonAppPolicySpec)


#: the CEL twin of :class:`PolicyMeta`'s name check, on the CRD's root
NAME_RULE: dict[str, str] = cel(f"self.metadata.name == '{POLICY_NAME}'", MSG_POLICY_NAME)


def policy_from(obj: dict[str, Any]) -> PythonAppPolicy:
    """The policy in ``obj`` (raises pydantic's ValidationError; callers say where it came
    from)."""
    return PythonAppPolicy.model_validate({k: v for k, v in obj.items() if k != "status"})
