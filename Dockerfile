# deskfleet: the operator, the portal, and the agent sidecar of every session host.
# Two stages: the build stage has pip and compiles wheels; the final stage only copies
# the finished virtualenv, so no build tool ships. tests/unit/test_dockerfile.py replays
# the COPY and RUN steps, since this machine has no container engine.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m venv /opt/deskfleet && /opt/deskfleet/bin/pip install --no-compile . && /opt/deskfleet/bin/pip uninstall -y pip

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="deskfleet" \
      org.opencontainers.image.description="Remote-workspace operator for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/deskfleet /opt/deskfleet
ENV PATH=/opt/deskfleet/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# A numeric, unprivileged user: runAsNonRoot can verify it without a passwd entry.
USER 10001:10001
ENTRYPOINT ["deskfleet"]
CMD ["run"]
