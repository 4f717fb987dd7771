# registry-agent: every function behind the emulator router, one container (docs/deploy.md).
#
#   docker build -t registry-agent .
#   docker run -p 8081:8081 -v registry-agent-state:/var/lib/registry-agent registry-agent
#
# BASE_IMAGE must provide python3 (3.11+) with the venv module at the same path in both stages;
# the tests build from a Debian image made with debootstrap because they cannot reach Docker Hub.
# No "# syntax=" line on purpose: it would make BuildKit fetch a frontend image from a registry.
ARG BASE_IMAGE=python:3.11-slim-bookworm
#checkov:skip=CKV_DOCKER_7:FROM uses ${BASE_IMAGE}, which checkov cannot resolve; its default is the pinned python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Offline builds: pre-built wheels in deploy/wheels/ (any wheel pip may need, including setuptools
# and wheel for the build backend) and --build-arg PIP_NO_INDEX=1 --build-arg
# PIP_FIND_LINKS=/src/deploy/wheels. pip reads both from the environment, where ARGs appear.
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
WORKDIR /src
# .dockerignore is an allowlist: only the package sources and deploy/ reach this COPY.
COPY . .
# One wheel for the agent plus one per dependency; the runtime stage installs exactly these.
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --wheel-dir /wheels /src

FROM ${BASE_IMAGE}
# SNYK_PORT/AGENT_HOST: listen on all interfaces inside the container (the agent's default is
# loopback only). STATE_DIR holds the scan queue, callback outbox and layer cache on the volume.
# Disk budget for the 5 GB the broker documentation sizes the agent for (docs/deploy.md):
# image ~0.4 GB + layer cache LAYER_CACHE_MAX_BYTES (1 GiB) + one image being scanned at a time
# (SNYK_MAX_IMAGE_SIZE_IN_BYTES, 2 GiB compressed, spooled under TMPDIR on the volume).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/registry-agent/bin:$PATH \
    AGENT_HOST=0.0.0.0 \
    SNYK_PORT=8081 \
    STATE_DIR=/var/lib/registry-agent \
    TMPDIR=/var/lib/registry-agent/tmp \
    LAYER_CACHE_MAX_BYTES=1073741824 \
    SNYK_MAX_IMAGE_SIZE_IN_BYTES=2147483648 \
    MAX_ACTIVE_OPERATIONS=1
# A fixed uid so volume ownership survives rebuilds and Kubernetes runAsUser can name it.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/agent \
        --shell /usr/sbin/nologin agent \
    && install -d -o agent -g agent -m 0750 /var/lib/registry-agent /var/lib/registry-agent/tmp
COPY --from=build /wheels /tmp/wheels
# Installing the wheel files by path (not a name against --find-links) keeps the exact set the
# build stage resolved, and needs no index: this stage never reaches the network.
RUN python3 -m venv /opt/registry-agent \
    && /opt/registry-agent/bin/pip install --no-index --find-links /tmp/wheels /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels
COPY deploy/healthcheck.py /opt/registry-agent/healthcheck.py
USER 10001:10001
WORKDIR /var/lib/registry-agent
# Declared after the chown above so a new named volume starts owned by the agent user.
VOLUME ["/var/lib/registry-agent"]
EXPOSE 8081
# Standard library only: the image ships neither curl nor wget.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/registry-agent/bin/python", "/opt/registry-agent/healthcheck.py"]
CMD ["registry-agent", "serve"]
