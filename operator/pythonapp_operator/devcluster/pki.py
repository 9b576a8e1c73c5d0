"""The cluster's certificates and keys, made locally with ``cryptography``.

One self-signed CA signs the API server's serving certificate and one client certificate per
identity. Identities matter because RBAC is on: the admin is in ``system:masters``; the
controller-manager and scheduler use the names the bootstrap RBAC roles are bound to
(``system:kube-controller-manager``, ``system:kube-scheduler``); kwok, which updates many nodes'
status and leases, is in ``system:masters`` like kwokctl's. The real node's kubelet gets its
own client (``system:node:<name>`` in ``system:nodes``, which the Node authorizer and
NodeRestriction accept as they are) and serving certificates from the same CA. The
service-account key is RSA (the API server signs tokens with it, the controller-manager signs
its own controllers' tokens). Certificate keys are P-256: fast to make, accepted everywhere.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
_VALIDITY = dt.timedelta(days=365)

CLIENTS: dict[str, tuple[str, list[str]]] = {
    # file stem: (CN = user name, O = groups)
    "admin": ("pythonapp-dev-admin", ["system:masters"]),
    "controller-manager": ("system:kube-controller-manager", []),
    "scheduler": ("system:kube-scheduler", []),
    "kwok": ("kwok-controller", ["system:masters"]),
    # The API server's identity towards kubelets (logs, exec, port-forward): the kubelet
    # authorises it with a SubjectAccessReview, which system:masters passes.
    "kubelet-client": ("kube-apiserver-kubelet-client", ["system:masters"]),
}


@dataclass(frozen=True)
class Pki:
    """Paths of the generated material, all under one directory."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def client_cert(self, who: str) -> Path:
        return self.dir / f"{who}.crt"

    def client_key(self, who: str) -> Path:
        return self.dir / f"{who}.key"

    def complete(self) -> bool:
        files = [
            self.ca_cert,
            self.ca_key,
            self.server_cert,
            self.server_key,
            self.sa_key,
            self.sa_pub,
        ]
        files += [p for w in CLIENTS for p in (self.client_cert(w), self.client_key(w))]
        return all(f.is_file() for f in files)


def _write(path: Path, data: bytes, secret: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str, orgs: list[str] | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs or []]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sign(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    is_ca: bool = False,
    server_sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_sans else ExtendedKeyUsageOID.CLIENT_AUTH
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server_sans:
            b = b.add_extension(x509.SubjectAlternativeName(server_sans), critical=False)
    return b.sign(ca_key, hashes.SHA256())


def generate(directory: Path) -> Pki:
    """Create a fresh CA, serving cert, client certs and SA key pair in ``directory``."""
    pki = Pki(directory)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("pythonapp-dev-ca")
    ca = _sign(ca_name, ca_key, ca_name, ca_key, is_ca=True)
    _write(pki.ca_key, _key_pem(ca_key), secret=True)
    _write(pki.ca_cert, ca.public_bytes(serialization.Encoding.PEM), secret=False)

    sans: list[x509.GeneralName] = [
        x509.DNSName(n)
        for n in (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
    ]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", KUBERNETES_SERVICE_IP)]
    skey = ec.generate_private_key(ec.SECP256R1())
    scert = _sign(_name("kube-apiserver"), skey, ca_name, ca_key, server_sans=sans)
    _write(pki.server_key, _key_pem(skey), secret=True)
    _write(pki.server_cert, scert.public_bytes(serialization.Encoding.PEM), secret=False)

    for who, (cn, orgs) in CLIENTS.items():
        ckey = ec.generate_private_key(ec.SECP256R1())
        cert = _sign(_name(cn, orgs), ckey, ca_name, ca_key)
        _write(pki.client_key(who), _key_pem(ckey), secret=True)
        _write(pki.client_cert(who), cert.public_bytes(serialization.Encoding.PEM), secret=False)

    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(pki.sa_key, _key_pem(sa), secret=True)
    pub = sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write(pki.sa_pub, pub, secret=False)
    return pki


def _load_ca(ca_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    pki = Pki(ca_dir)
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("unexpected CA key type")
    return x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()), ca_key


def serving_cert_for(
    ca_dir: Path, out_dir: Path, name: str, ips: list[str], dns: list[str]
) -> tuple[Path, Path]:
    """A serving certificate signed by the dev CA (the real node's kubelet: the API server
    checks it against the CA when it calls the kubelet at the node IP)."""
    ca, ca_key = _load_ca(ca_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    cert = _sign(_name(name), key, ca.subject, ca_key, server_sans=sans)
    crt_path, key_path = out_dir / f"{name}.crt", out_dir / f"{name}.key"
    _write(key_path, _key_pem(key), secret=True)
    _write(crt_path, cert.public_bytes(serialization.Encoding.PEM), secret=False)
    return crt_path, key_path


def client_cert_for(ca_dir: Path, out_dir: Path, user: str, groups: list[str]) -> tuple[Path, Path]:
    """Sign a client certificate for an arbitrary identity (tests use it for RBAC refusals)."""
    ca, ca_key = _load_ca(ca_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(_name(user, groups), key, ca.subject, ca_key)
    crt_path, key_path = out_dir / f"{user}.crt", out_dir / f"{user}.key"
    _write(key_path, _key_pem(key), secret=True)
    _write(crt_path, cert.public_bytes(serialization.Encoding.PEM), secret=False)
    return crt_path, key_path
