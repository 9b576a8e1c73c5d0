# The operator's own image: `pythonapp operator`, nothing else.
#
#   docker build -t ghcr.io/pythonapp-operator/operator:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# Two stages. The builder makes a virtualenv at /opt/venv from requirements.lock (every
# distribution pinned and hash-checked, --require-hashes), then adds the operator's own wheel
# with --no-deps, so nothing unlocked gets in. Its build toolchain (pip, setuptools, wheel) is
# locked and hash-checked too (requirements-build.lock) and lives in a second virtualenv that
# stays behind. The runtime stage is the same python:3.11-slim plus that one directory, run as
# a numeric non-root user. Secrets never enter the image: the operator's API token is mounted
# at run time (deploy/ projects a service-account token into the pod).
#
# Base image pinned by digest (the multi-arch index of python:3.11-slim), so what runs is what
# was tested. To move to a newer base, resolve the tag and replace BOTH digests:
#   docker buildx imagetools inspect python:3.11-slim --format '{{json .Manifest.Digest}}'
# tests/deploy/test_dockerfile.py refuses a FROM without a sha256 digest.

FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# 1. The build toolchain, locked: pip, setuptools, wheel in /opt/build (never shipped).
COPY requirements-build.lock ./
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes -r requirements-build.lock

# 2. The runtime dependencies, locked and hash-checked, into a virtualenv without pip or
#    setuptools of its own (the locked pip of /opt/build installs into it with --python).
#    Its own layer, so a code change does not reinstall them.
COPY requirements.lock ./
RUN python -m venv --without-pip /opt/venv \
    && /opt/build/bin/pip --python /opt/venv/bin/python install \
        --no-cache-dir --require-hashes -r requirements.lock

# 3. The operator itself, as a wheel built offline from the locked backend, installed with
#    --no-deps (its dependencies are exactly the locked ones above).
COPY pyproject.toml ./
COPY operator/ ./operator/
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation -w /tmp/wheels . \
    && /opt/build/bin/pip --python /opt/venv/bin/python install \
        --no-cache-dir --no-deps --no-index /tmp/wheels/pythonapp_operator-*.whl


FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="pythonapp-operator" \
      org.opencontainers.image.description="Kubernetes operator for hardened Python web apps and workers" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"

# Only the virtualenv: no compiler, no build toolchain, no sources, no pip in it.
COPY --from=builder /opt/venv /opt/venv

# uid 10001 has no passwd entry: nothing may need one (the operator hands kopf its own
# identity rather than let it call getpass.getuser(), which raised here on the real node).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Numeric, so the kubelet can verify runAsNonRoot (a user name cannot be checked). The same
# uid/gid the Deployment in deploy/ sets. No home directory is needed: in a pod the operator
# uses the mounted service-account token, never ~/.kube.
USER 10001:10001

# 8080: /healthz and /readyz (the probes); 9090: /metrics (Prometheus).
EXPOSE 8080 9090

# The operator's liveness endpoint (`--health`): 503 while the PythonApp CRD is missing. slim has no curl: Python's urllib does the probe and
# exits non-zero on a refused connection, a timeout or a non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# Exec form: the operator is PID 1 and gets SIGTERM itself (kopf stops cleanly on it).
ENTRYPOINT ["pythonapp", "operator"]
CMD ["--all-namespaces", "--health", "0.0.0.0:8080", "--metrics", "0.0.0.0:9090"]
