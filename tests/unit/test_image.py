"""The image policy: a broad table of references and a property test over the grammar."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pythonapp_operator.api import image
from pythonapp_operator.api.image import ImageError, parse_image

D = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "tag"),
    [
        (f"python@{D}", None, "python", None),
        (f"python:3.12-slim@{D}", None, "python", "3.12-slim"),
        (f"library/python:3.12@{D}", None, "library/python", "3.12"),
        (f"ghcr.io/acme/shop:1.4.2@{D}", "ghcr.io", "acme/shop", "1.4.2"),
        (f"ghcr.io/acme/team/sub/shop@{D}", "ghcr.io", "acme/team/sub/shop", None),
        (f"localhost:5000/shop:v1@{D}", "localhost:5000", "shop", "v1"),
        (f"localhost/shop@{D}", "localhost", "shop", None),
        (
            f"registry.example.com:8443/a/b_c/d-e:V1_2.3@{D}",
            "registry.example.com:8443",
            "a/b_c/d-e",
            "V1_2.3",
        ),
        (f"10.0.0.1:5000/x@{D}", "10.0.0.1:5000", "x", None),
        (f"[::1]:5000/x:1@{D}", "[::1]:5000", "x", "1"),
        (f"my-registry/app@{D}", None, "my-registry/app", None),
        (f"a__b/c--d/e.f:tag@{D}", None, "a__b/c--d/e.f", "tag"),
        (f"shop:latest-1@{D}", None, "shop", "latest-1"),
        (f"latest@{D}", None, "latest", None),
        (f"ghcr.io/acme/latest:1@{D}", "ghcr.io", "acme/latest", "1"),
    ],
)
def test_accepts_pinned_references(
    ref: str, registry: str | None, repository: str, tag: str | None
) -> None:
    parsed = parse_image(ref)
    assert (parsed.registry, parsed.repository, parsed.tag, parsed.digest) == (
        registry,
        repository,
        tag,
        D,
    )
    assert str(parsed) == ref


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("python", image.MSG_NO_DIGEST),
        ("python:3.12", image.MSG_NO_DIGEST),
        ("ghcr.io/acme/shop:1.4.2", image.MSG_NO_DIGEST),
        ("localhost:5000/shop", image.MSG_NO_DIGEST),
        ("python:latest", image.MSG_NO_DIGEST),
        (f"python:latest@{D}", image.MSG_LATEST),
        (f"ghcr.io/acme/shop:latest@{D}", image.MSG_LATEST),
        (f"localhost:5000/shop:latest@{D}", image.MSG_LATEST),
        ("python@sha256:abc", image.MSG_BAD_DIGEST),
        ("python@sha256:" + "A" * 64, image.MSG_BAD_DIGEST),
        ("python@sha512:" + "a" * 128, image.MSG_BAD_DIGEST),
        ("python@sha256:" + "a" * 65, image.MSG_BAD_DIGEST),
        ("python@" + "a" * 64, image.MSG_BAD_DIGEST),
        (f"python@{D}@{D}", image.MSG_BAD_DIGEST),
        (f"Python@{D}", image.MSG_MALFORMED),
        (f"ghcr.io/Acme/shop@{D}", image.MSG_MALFORMED),
        (f"shop:@{D}", image.MSG_MALFORMED),
        (f"shop:-tag@{D}", image.MSG_MALFORMED),
        (f"/shop@{D}", image.MSG_MALFORMED),
        (f"shop/@{D}", image.MSG_MALFORMED),
        (f"sh op@{D}", image.MSG_MALFORMED),
        (f"shop_@{D}", image.MSG_MALFORMED),
        (f"shop@{D}\n", image.MSG_BAD_DIGEST),
        (f"shop:{'t' * 129}@{D}", image.MSG_MALFORMED),
        ("", image.MSG_MALFORMED),
        ("   ", image.MSG_MALFORMED),
    ],
)
def test_refuses_with_a_message_that_says_what_to_do(ref: str, message: str) -> None:
    with pytest.raises(ImageError) as err:
        parse_image(ref)
    assert str(err.value) == message


def test_messages_show_the_expected_form() -> None:
    for message in (image.MSG_NO_DIGEST, image.MSG_MALFORMED, image.MSG_BAD_DIGEST):
        assert image.EXPECTED_FORM in message
    assert "digest" in image.MSG_LATEST


def test_short_form_is_display_sized() -> None:
    ref = parse_image(f"ghcr.io/acme/team/shop:1.4.2@{D}")
    assert ref.short == "shop:1.4.2@sha256:0123456789ab"


# -- property test over the grammar -----------------------------------------------------------

_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_sep = st.sampled_from([".", "_", "__", "-", "--"])
_component = st.builds(
    lambda first, rest: first + "".join(s + a for s, a in rest),
    _alnum,
    st.lists(st.tuples(_sep, _alnum), max_size=2),
)
_repository = st.lists(_component, min_size=1, max_size=4).map("/".join)
_registry = st.one_of(
    st.none(),
    st.sampled_from(["ghcr.io", "docker.io", "localhost", "localhost:5000", "r.example.com:8443"]),
)
_tag = st.one_of(
    st.none(),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True).filter(
        lambda t: t != "latest"
    ),
)
_digest = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h)


def _join(registry: str | None, repository: str, tag: str | None, digest: str) -> str:
    name = f"{registry}/{repository}" if registry else repository
    return name + (f":{tag}" if tag else "") + "@" + digest


@given(_registry, _repository, _tag, _digest)
def test_every_grammatical_pinned_reference_round_trips(
    registry: str | None, repository: str, tag: str | None, digest: str
) -> None:
    ref = _join(registry, repository, tag, digest)
    parsed = parse_image(ref)
    assert str(parsed) == ref
    assert parsed.digest == digest
    assert parsed.tag == tag


@given(_registry, _repository, _tag)
def test_no_reference_without_digest_is_accepted(
    registry: str | None, repository: str, tag: str | None
) -> None:
    name = f"{registry}/{repository}" if registry else repository
    ref = name + (f":{tag}" if tag else "")
    with pytest.raises(ImageError, match="pinned by digest"):
        parse_image(ref)


@given(_registry, _repository, _digest)
def test_latest_is_refused_even_with_a_digest(
    registry: str | None, repository: str, digest: str
) -> None:
    with pytest.raises(ImageError, match="latest"):
        parse_image(_join(registry, repository, "latest", digest))


@given(_registry, _repository, _tag, _digest, st.integers(0, 70))
def test_any_damaged_digest_is_refused(
    registry: str | None, repository: str, tag: str | None, digest: str, cut: int
) -> None:
    damaged = digest[: 7 + cut] if cut < 64 else digest + "a"
    ref = _join(registry, repository, tag, damaged)
    with pytest.raises(ImageError):
        parse_image(ref)
