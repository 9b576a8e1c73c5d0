"""Image policy: parse OCI image references and insist on a pinned, non-`latest` digest.

What runs must be what was tested, so an image is accepted only as
``[registry[:port]/]repository[:tag]@sha256:<64 lowercase hex>``. The grammar follows the
distribution/reference rules (lowercase path components separated by ``.``, ``_``, ``__`` or
``-`` runs; a first component that holds a ``.`` or ``:`` or is ``localhost`` is a registry).

The same regular expressions feed the CRD's CEL rules (:mod:`pythonapp_operator.api.crd`), and the
same messages are used in both places, so ``pythonapp validate`` and ``kubectl apply`` refuse the
same references with the same words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# -- grammar (RE2-compatible: these strings are also used inside CEL `matches()`) -------------
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_REPOSITORY = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"

#: name[:tag] part of a reference (registry optional); the registry is told apart in code.
NAME_TAG_PATTERN = rf"^(?:{_DOMAIN}/)?{_REPOSITORY}(?::{_TAG})?$"
#: a well-formed digest as this project requires it.
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
#: the whole accepted form, for CEL: name[:tag]@sha256:<64 hex>.
REFERENCE_PATTERN = rf"^(?:{_DOMAIN}/)?{_REPOSITORY}(?::{_TAG})?@sha256:[0-9a-f]{{64}}$"
#: a reference whose tag is `latest` (the tag sits after the last `/`).
LATEST_TAG_PATTERN = r"^(?:[^@]*/)?[^/@:]+:latest(?:@.*)?$"

MAX_LENGTH = 512
EXPECTED_FORM = "[registry/]repository[:tag]@sha256:<64 lowercase hex>"

# -- messages (shared verbatim with the CRD's CEL rules) ---------------------------------------
MSG_MALFORMED = (
    "is not a valid image reference: expected "
    f"{EXPECTED_FORM}, e.g. ghcr.io/acme/shop:1.4.2@sha256:<digest>"
)
MSG_NO_DIGEST = (
    "must be pinned by digest: append @sha256:<64 lowercase hex> "
    f"(the form is {EXPECTED_FORM}; `crane digest IMAGE` or "
    "`docker buildx imagetools inspect IMAGE` prints it)"
)
MSG_BAD_DIGEST = (
    "has a malformed digest: only sha256 with exactly 64 lowercase hex characters is accepted "
    f"({EXPECTED_FORM})"
)
MSG_LATEST = (
    "uses the tag 'latest', which is refused even with a digest: tag a release "
    "(e.g. :1.4.2) or drop the tag and keep only @sha256:<digest>"
)

_NAME_TAG_RE = re.compile(NAME_TAG_PATTERN)
_DIGEST_RE = re.compile(DIGEST_PATTERN)
_LATEST_RE = re.compile(LATEST_TAG_PATTERN)


class ImageError(ValueError):
    """A reference the policy refuses; ``str()`` is the user-facing message."""


@dataclass(frozen=True)
class ImageRef:
    """A parsed, policy-approved image reference."""

    registry: str | None
    repository: str
    tag: str | None
    digest: str

    def __str__(self) -> str:
        name = f"{self.registry}/{self.repository}" if self.registry else self.repository
        tag = f":{self.tag}" if self.tag else ""
        return f"{name}{tag}@{self.digest}"

    @property
    def short(self) -> str:
        """Human-sized form for status and printer columns: last path part, tag, 12 hex."""
        base = self.repository.rsplit("/", 1)[-1]
        tag = f":{self.tag}" if self.tag else ""
        return f"{base}{tag}@{self.digest[:19]}"


def _split_name_tag(name_tag: str) -> tuple[str | None, str, str | None]:
    """Split a grammar-checked ``name[:tag]`` into registry, repository and tag."""
    first, sep, rest = name_tag.partition("/")
    registry: str | None = None
    remainder = name_tag
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, remainder = first, rest
    repository, colon, tag = remainder.rpartition(":")
    if not colon:
        return registry, remainder, None
    return registry, repository, tag


def parse_image(reference: str) -> ImageRef:
    """Parse and check one reference; raise :class:`ImageError` with what to do.

    Checks run from the most basic to the most specific, so the first message is the useful
    one: well-formed, has a digest, digest is sha256/64 hex, tag is not ``latest``.
    """
    if not isinstance(reference, str) or not reference.strip():
        raise ImageError(MSG_MALFORMED)
    if len(reference) > MAX_LENGTH:
        raise ImageError(f"is longer than {MAX_LENGTH} characters")
    name_tag, at, digest = reference.partition("@")
    if not _NAME_TAG_RE.fullmatch(name_tag):
        raise ImageError(MSG_MALFORMED)
    if not at:
        raise ImageError(MSG_NO_DIGEST)
    if not _DIGEST_RE.fullmatch(digest):
        raise ImageError(MSG_BAD_DIGEST)
    if _LATEST_RE.fullmatch(reference):
        raise ImageError(MSG_LATEST)
    registry, repository, tag = _split_name_tag(name_tag)
    if len(repository) > 255:
        raise ImageError("has a repository name longer than 255 characters")
    return ImageRef(registry=registry, repository=repository, tag=tag, digest=digest)
