"""Checks of the dev-cluster harness that need no running cluster (fast, run everywhere)."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pythonapp_operator import devcluster
from pythonapp_operator.devcluster import binaries, components, kubeconfig, paths, pki, procs


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> pki.Pki:
    return pki.generate(tmp_path_factory.mktemp("pki"))


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certificates_chain_to_the_ca_with_the_right_identities(generated: pki.Pki) -> None:
    ca = _cert(generated.ca_cert)
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    for who, (user, groups) in pki.CLIENTS.items():
        cert = _cert(generated.client_cert(who))
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user
        orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        assert orgs == groups
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert pki.CLIENTS["admin"][1] == ["system:masters"]
    server = _cert(generated.server_cert)
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    assert generated.complete()
    assert generated.ca_key.stat().st_mode & 0o077 == 0  # private keys are owner-only


def test_kubeconfig_embeds_credentials(generated: pki.Pki, tmp_path: Path) -> None:
    path = kubeconfig.write(
        tmp_path / "kc",
        "https://127.0.0.1:1",
        ca=generated.ca_cert,
        cert=generated.client_cert("admin"),
        key=generated.client_key("admin"),
        user="admin",
    )
    doc = yaml.safe_load(path.read_text())
    user = doc["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]) == (
        generated.client_cert("admin").read_bytes()
    )
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:1"
    assert path.stat().st_mode & 0o077 == 0


def test_component_flags_keep_security_on_and_listen_on_loopback(
    generated: pki.Pki, tmp_path: Path
) -> None:
    layout = paths.Layout(tmp_path)
    specs = components.specs(
        binaries.Binaries(tmp_path / "bin"), layout, generated, components.Ports.pick()
    )
    assert list(specs) == list(components.ORDER)
    api = specs["kube-apiserver"].argv
    assert "--authorization-mode=Node,RBAC" in api
    assert not [a for a in api if a.startswith("--admission-control")]
    assert not [a for a in api if a.startswith("--disable-admission-plugins")]
    assert "--bind-address=127.0.0.1" in api
    kcm = specs["kube-controller-manager"].argv
    for flag in ("--leader-elect=false", "--use-service-account-credentials=true"):
        assert flag in kcm
    assert any(a.startswith("--service-account-private-key-file=") for a in kcm)
    assert any(a.startswith("--root-ca-file=") for a in kcm)
    kwok = specs["kwok"].argv
    assert "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake" in kwok
    assert len([a for a in kwok if a.startswith("--config=")]) == len(binaries.KWOK_STAGES) + len(
        binaries.OWN_STAGES
    )
    for spec in specs.values():
        assert spec.address.split("://")[1].startswith("127.0.0.1:")
        urls = [a.split("=", 1)[1] for a in spec.argv if "-urls=" in a or "address=" in a]
        assert all("127.0.0.1" in u for u in urls), (spec.name, urls)


def test_pid_identity_guards_against_reuse(tmp_path: Path) -> None:
    pid, ticks = procs.spawn(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        tmp_path / "sleep.log",
    )
    try:
        assert procs.alive(pid, ticks)
        assert not procs.alive(pid, ticks + 1)  # same pid, other start time: not ours
        procs.stop(pid, ticks + 1, grace=0.5)  # must not signal a process that is not ours
        assert procs.alive(pid, ticks)
    finally:
        procs.stop(pid, ticks, grace=2.0)
    assert not procs.alive(pid, ticks)


def test_status_without_a_cluster(tmp_path: Path) -> None:
    st = devcluster.status(tmp_path / "none")
    assert not st.running and not st.ready and st.components == []
    assert st.to_json()["kubeconfig"] == str(devcluster.kubeconfig_path(tmp_path / "none"))
    devcluster.down(tmp_path / "none")  # a no-op, not an error


def _build_script(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONAPP_CACHE": str(cache),
        "K8S_VERSION": binaries.K8S_VERSION,
        "ETCD_VERSION": binaries.ETCD_VERSION,
        "KWOK_VERSION": binaries.KWOK_VERSION,
        "PYTHONAPP_NO_DOWNLOAD": "1",
    }
    return subprocess.run(
        ["bash", str(binaries.BUILD_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def _fake_bin_dir(cache: Path, names: tuple[str, ...]) -> Path:
    tag = f"k8s-{binaries.K8S_VERSION}-etcd-{binaries.ETCD_VERSION}-kwok-{binaries.KWOK_VERSION}"
    bin_dir = cache / "bin" / tag
    bin_dir.mkdir(parents=True)
    for name in names:
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def test_build_script_with_everything_cached_says_one_line(tmp_path: Path) -> None:
    bin_dir = _fake_bin_dir(tmp_path, binaries.NAMES)
    proc = _build_script(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{bin_dir}\n"
    assert re.fullmatch(rf"\[controlplane +0s\] cached: {re.escape(str(bin_dir))}\n", proc.stderr)


def test_build_script_says_each_step_n_of_m_with_its_time_and_what_is_left(
    tmp_path: Path,
) -> None:
    """What a cold `make demo` shows (here with kwok and etcd already built)."""
    _fake_bin_dir(tmp_path, ("kwok", "etcd"))
    proc = _build_script(tmp_path, "--plan")
    assert proc.returncode == 0, proc.stderr
    lines = [re.sub(r"^\[controlplane +\d+s\] ", "", line) for line in proc.stderr.splitlines()]
    k8s = binaries.K8S_VERSION
    assert lines == [
        "missing: k8s-modules kube-apiserver kube-controller-manager kube-scheduler kubectl "
        "kubelet; building takes about 9 minutes on 2 cores the first time, seconds after",
        f"1/6 Kubernetes {k8s} modules (download, resolve) (usually ~1m00s); "
        "then kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet",
        f"2/6 kube-apiserver {k8s} (usually ~4m00s); "
        "then kube-controller-manager, kube-scheduler, kubectl, kubelet",
        f"3/6 kube-controller-manager {k8s} (usually ~1m30s); "
        "then kube-scheduler, kubectl, kubelet",
        f"4/6 kube-scheduler {k8s} (usually ~30s); then kubectl, kubelet",
        f"5/6 kubectl {k8s} (usually ~30s); then kubelet",
        f"6/6 kubelet {k8s} (usually ~1m00s)",
    ]
    assert proc.stdout == ""
    assert not (tmp_path / "build").exists(), "--plan builds nothing"


def test_a_cold_build_is_announced_as_about_eleven_minutes(tmp_path: Path) -> None:
    proc = _build_script(tmp_path, "--plan")
    first = proc.stderr.splitlines()[0]
    assert "about 11 minutes on 2 cores the first time, seconds after" in first, first
    assert len(proc.stderr.splitlines()) == 1 + 8  # the announcement and eight steps
