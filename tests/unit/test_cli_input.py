"""`validate` and `render` as a CI gate: every PythonApp wherever it sits, nothing that is not
a Kubernetes object let through, and hostile input answered with one line and exit 1.

The hostile inputs run in a real subprocess with an address-space limit, so "never a traceback"
and "never unbounded memory" are checked on the actual command, not on a function.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.factories import DIGEST, make_doc

from pythonapp_operator.cli import check_files, main
from pythonapp_operator.yamlio import MAX_ALIAS_NODES, MAX_BYTES, MAX_DEPTH

LATEST = f"ghcr.io/acme/shop:latest@{DIGEST}"
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}


def write(tmp_path: Path, *docs: object, name: str = "apps.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def app(name: str = "shop", **spec: Any) -> dict[str, Any]:
    doc = make_doc(resources={"requests": {"cpu": "100m"}, "limits": {"memory": "512Mi"}}, **spec)
    doc["metadata"]["name"] = name
    return doc


def kube_list(*items: object, kind: str = "List", api_version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {}, "items": list(items)}


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["validate", *args])
    return code, capsys.readouterr().err.strip().splitlines()


# -- where PythonApps sit ----------------------------------------------------------------------


def test_a_pythonapp_inside_a_kind_list_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's first case: `kubectl get -o yaml` output with a `latest` image passed."""
    path = write(tmp_path, kube_list(app(), app("cart", image=LATEST)))
    code, lines = validate(capsys, str(path))
    assert code == 1
    assert lines == [f"{path}: team-a/cart: spec.image: " + lines[0].split("spec.image: ", 1)[1]]
    assert "uses the tag 'latest'" in lines[0]


def test_lists_inside_lists_and_any_list_kind_with_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inner = kube_list(CONFIGMAP, app("deep", replicas=-1))
    other = kube_list(app("other", image="python:3.12"), kind="ThingList", api_version="x/v1")
    path = write(tmp_path, kube_list(app(), kube_list(inner)), other)
    code, lines = validate(capsys, str(path))
    assert code == 1
    assert [line.split(": ", 3)[1:3] for line in lines] == [
        ["team-a/deep", "spec.replicas"],
        ["team-a/other", "spec.image"],
    ]


def test_kubectl_get_output_with_status_and_managed_fields_is_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = app()
    live["metadata"].update(
        uid="0b6c1a2e-1111-2222-3333-444455556666",
        resourceVersion="4242",
        generation=3,
        creationTimestamp="2026-01-01T00:00:00Z",
        managedFields=[{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}],
        annotations={"argocd.argoproj.io/tracking-id": "demo:pythonapp.dev/PythonApp:team-a/shop"},
    )
    live["status"] = {
        "observedGeneration": 3,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Available"}],
    }
    path = write(tmp_path, kube_list(live, app("cart")))
    code, lines = validate(capsys, str(path))
    assert (code, lines) == (0, ["2 PythonApp(s) valid"])


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "capture",
    ["kubectl-get-pythonapps.yaml", "pythonapplist.json"],
    ids=["kubectl-get-o-yaml", "api-server-list"],
)
def test_lists_captured_from_a_real_api_server(
    capture: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kubectl -n demo get pythonapps -o yaml` (a v1 List) and the API server's own
    PythonAppList (`kubectl get --raw .../pythonapps`, JSON), captured from the dev cluster
    running the examples: status, managedFields and all. All four apps are checked, and a
    `latest` image in one of them fails the run."""
    source = DATA / capture
    code, lines = validate(capsys, str(source))
    assert code == 0 and lines[-1] == "4 PythonApp(s) valid, 2 warning(s)", lines
    broken = tmp_path / capture
    broken.write_text(
        source.read_text().replace(
            "ghcr.io/acme/shop:1.4.2@sha256:", "ghcr.io/acme/shop:latest@sha256:", 1
        )
    )
    code, lines = validate(capsys, str(broken))
    errors = [line for line in lines if ": warning: " not in line]
    assert code == 1 and len(errors) == 1, lines
    assert errors[0].startswith(f"{broken}: demo/shop: spec.image: uses the tag 'latest'")


def test_a_pythonapplist_with_items_without_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = [
        {k: v for k, v in d.items() if k not in ("kind", "apiVersion")}
        for d in (app(), app("cart", image=LATEST))
    ]
    path = write(
        tmp_path, kube_list(*bare, kind="PythonAppList", api_version="pythonapp.dev/v1alpha1")
    )
    code, lines = validate(capsys, str(path))
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith(f"{path}: team-a/cart: spec.image: ")


def test_render_renders_what_sits_in_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, kube_list(app(), kube_list(app("worker", profile="worker"))))
    assert main(["render", str(path)]) == 0
    out = capsys.readouterr()
    names = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out.out)]
    assert names[0] == ("Deployment", "shop") and ("Deployment", "worker") in names


# -- what is not a Kubernetes object -----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            yaml.safe_dump([app()]),
            "document 1: a YAML sequence, not a Kubernetes object: put the objects under "
            "`items:` of a `kind: List` (apiVersion: v1), or separate them with `---`",
            id="top-level-sequence",
        ),
        pytest.param(
            "just some plain words\n",
            "document 1: not a Kubernetes object (a mapping with apiVersion and kind): "
            "found str 'just some plain words'",
            id="plain-words",
        ),
        pytest.param(
            "---\nkind: ConfigMap\n---\n42\n",
            "document 2: not a Kubernetes object (a mapping with apiVersion and kind): "
            "found int 42",
            id="scalar-document",
        ),
        pytest.param(
            "image: x\nreplicas: 2\n",
            "document 1: not a Kubernetes object: it has no `kind`",
            id="mapping-without-kind",
        ),
        pytest.param(
            "kind: [PythonApp]\n",
            "document 1: `kind` must be a non-empty string (found a list)",
            id="kind-not-a-string",
        ),
        pytest.param(
            yaml.safe_dump({**app(), "kind": "pythonapp"}),
            "document 1: kind 'pythonapp' is not 'PythonApp' (kinds are case-sensitive)",
            id="kind-wrong-case",
        ),
        pytest.param(
            "apiVersion: v1\nkind: List\nitems: {a: b}\n",
            "document 1: items: must be a list of objects (found a mapping)",
            id="items-not-a-list",
        ),
        pytest.param(
            yaml.safe_dump(kube_list(app(), "oops")),
            "document 1: items[1]: not a Kubernetes object (a mapping with apiVersion and kind): "
            "found str 'oops'",
            id="list-item-scalar",
        ),
        pytest.param(
            yaml.safe_dump(kube_list(kube_list(["nested", "sequence"]))),
            "document 1: items[0].items[0]: not a Kubernetes object (a mapping with apiVersion "
            "and kind): found a YAML sequence",
            id="nested-list-item-sequence",
        ),
    ],
)
def test_documents_that_are_not_objects_fail_with_their_place(
    tmp_path: Path, content: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text(content)
    for command in ("validate", "render"):
        assert main([command, str(path)]) == 1
        out = capsys.readouterr()
        assert f"{path}: {expected}" in out.err.splitlines(), out.err
        assert out.out == ""


def test_a_file_without_pythonapps_says_so_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only_others = write(tmp_path, CONFIGMAP, CONFIGMAP, {**CONFIGMAP, "kind": "Service"})
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n---\n")
    empty_list = write(tmp_path, kube_list(), name="list.yaml")
    code, lines = validate(capsys, str(only_others), str(empty), str(empty_list))
    assert code == 1
    assert lines == [
        f"{only_others}: no PythonApp found (only ConfigMap x2, Service): "
        "this command checks PythonApps",
        f"{empty}: no PythonApp found: the file holds no YAML document",
        f"{empty_list}: no PythonApp found: its Lists are empty",
    ]
    assert main(["render", str(only_others)]) == 1
    assert capsys.readouterr().out == ""


def test_allow_empty_accepts_files_without_pythonapps_but_not_broken_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    others = write(tmp_path, CONFIGMAP, name="cm.yaml")
    apps = write(tmp_path, app(), name="apps.yaml")
    code, lines = validate(capsys, "--allow-empty", str(others), str(apps))
    assert (code, lines) == (0, ["1 PythonApp(s) valid"])
    words = tmp_path / "words.yaml"
    words.write_text("hello\n")
    code, lines = validate(capsys, "--allow-empty", str(words))
    assert code == 1 and "not a Kubernetes object" in lines[0]


def test_the_help_documents_the_choices() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pythonapp_operator.cli", "validate", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for phrase in ("kind: List", "no PythonApp found", "--allow-empty", "warning:", "--strict"):
        assert phrase in proc.stdout, phrase


# -- hostile input -----------------------------------------------------------------------------

BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)
ALIAS_CHAIN = "a0: &a0 [x]\n" + "".join(f"a{i + 1}: &a{i + 1} [*a{i}]\n" for i in range(150))
HOSTILE: dict[str, tuple[bytes, str]] = {
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary data"),
    "huge": (b"a: b\n" * (MAX_BYTES // 5 + 1), "larger than 10 MiB"),
    "deep-flow": (b"[" * 100_000 + b"]" * 100_000, "nest"),
    "deep-block": ("".join("  " * i + "a:\n" for i in range(500)).encode(), "nested deeper"),
    "billion-laughs": (BILLION_LAUGHS.encode(), f"aliases expand to more than {MAX_ALIAS_NODES}"),
    "alias-chain": (ALIAS_CHAIN.encode(), f"nested deeper than {MAX_DEPTH} levels"),
    "recursive-alias": (b"kind: List\nitems: &a [*a]\n", "refers to its own anchor"),
    "latin-1": ("metadata: {name: caf\xe9}\n".encode("latin-1"), "not UTF-8 text"),
    "utf-16": ("kind: PythonApp\n".encode("utf-16"), "UTF-16 encoded"),
    "control-char": (b"kind: PythonApp\nname: \x07\n", "line 2: not valid YAML: character 0x0007"),
    "bad-date": (b"kind: List\nitems:\n- when: 2001-02-30\n", "line 3: not valid YAML: day is"),
    "huge-int": (b"replicas: " + b"9" * 5000 + b"\n", "line 1: not valid YAML: Exceeds the limit"),
    "python-tag": (b"a: !!python/object/apply:os.system [id]\n", "could not determine a constr"),
    "unclosed": (b'kind: "PythonApp\n', "not valid YAML"),
    "tabs": (b"kind: List\nitems:\n\t- a\n", "line 3: not valid YAML"),
}
AS_LIMIT = 1024 * 1024 * 1024  # 1 GiB of address space for the whole CLI process


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pythonapp_operator.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
        check=False,
        preexec_fn=_limit_memory,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def assert_one_line_failure(
    proc: subprocess.CompletedProcess[bytes], source: str, text: str
) -> None:
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err[-2000:]
    assert proc.returncode == 1, (proc.returncode, err[-2000:])
    assert proc.stdout == b""
    lines = err.splitlines()
    assert len(lines) == 1, lines[:5]
    assert lines[0].startswith(f"{source}: ") and text in lines[0], lines[0]


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for case, (content, _expected) in HOSTILE.items():
        paths[case] = folder / f"{case}.yaml"
        paths[case].write_bytes(content)
    return paths


def test_hostile_input_in_a_real_process_with_bounded_memory(
    hostile_files: dict[str, Path],
) -> None:
    """All of them in one run: one line per file, in order, exit 1, within 1 GiB."""
    cases = sorted(HOSTILE)
    proc = run_cli("validate", *(str(hostile_files[c]) for c in cases))
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err[-3000:]
    assert (proc.returncode, proc.stdout) == (1, b""), err[-3000:]
    lines = err.splitlines()
    assert len(lines) == len(cases), lines
    for case, line in zip(cases, lines, strict=True):
        assert line.startswith(f"{hostile_files[case]}: "), (case, line)
        assert HOSTILE[case][1] in line, (case, line)


@pytest.mark.parametrize("case", sorted(HOSTILE), ids=str)
@pytest.mark.parametrize("command", ["validate", "render"])
def test_hostile_input_is_one_line_and_exit_1(
    hostile_files: dict[str, Path], case: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = hostile_files[case]
    assert main([command, str(path)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == [out.err.strip()], out.err
    assert out.err.startswith(f"{path}: ") and HOSTILE[case][1] in out.err


def test_hostile_input_on_stdin() -> None:
    content, expected = HOSTILE["billion-laughs"]
    assert_one_line_failure(run_cli("validate", "-", stdin=content), "<stdin>", expected)


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/dev/zero", "larger than 10 MiB"), ("/", "cannot read: Is a directory")],
)
def test_devices_and_directories_are_one_line(
    path: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endless device is read only up to the limit."""
    assert main(["validate", path]) == 1
    assert capsys.readouterr().err == f"{path}: {expected}" + (
        ": not read (PythonApp manifests are a few KiB; split the file)\n"
        if "larger" in expected
        else "\n"
    )


def test_anchors_and_merge_keys_within_bounds_still_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text(f"""\
apiVersion: v1
kind: List
items:
- apiVersion: pythonapp.dev/v1alpha1
  kind: PythonApp
  metadata: {{name: a, namespace: demo}}
  spec: &spec
    image: ghcr.io/acme/a:1@{DIGEST}
    resources: {{requests: {{cpu: 100m}}, limits: {{memory: 256Mi}}}}
- apiVersion: pythonapp.dev/v1alpha1
  kind: PythonApp
  metadata: {{name: b, namespace: demo}}
  spec:
    <<: *spec
    replicas: 3
""")
    code, lines = validate(capsys, str(path))
    assert (code, lines) == (0, ["2 PythonApp(s) valid"])


YAMLISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["kind", "apiVersion", "items", "metadata", "spec", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    docs=st.lists(YAMLISH, max_size=4),
    kinds=st.lists(
        st.sampled_from(["PythonApp", "List", "PythonAppList", "ConfigMap"]), max_size=4
    ),
)
def test_any_yaml_gives_lines_for_the_file_and_never_raises(
    tmp_path: Path, docs: list[object], kinds: list[str]
) -> None:
    for doc, kind in zip(docs, kinds, strict=False):
        if isinstance(doc, dict):
            doc["kind"] = kind
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    err = io.StringIO()
    checked = check_files([str(path)], err)
    lines = err.getvalue().splitlines()
    assert checked.errors + checked.warnings == len(lines)
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    assert checked.errors or checked.apps


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
def test_any_bytes_give_lines_and_never_raise(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.bin"
    path.write_bytes(data)
    err = io.StringIO()
    checked = check_files([str(path)], err)
    lines = err.getvalue().splitlines()
    assert checked.apps == [] and checked.errors == len(lines) >= 1
    assert all(line.startswith(f"{path}: ") for line in lines), lines
