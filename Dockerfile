# pos-edge: slim, multi-stage, non-root. Mount the configuration at
# /etc/pos-edge/tenants.yaml and pass the secrets it references (${VAR}) as
# environment variables. Kubernetes examples: deploy/.
#
# Build stage: a wheel of the project and of every dependency, so the runtime
# stage installs offline from exactly these wheels and carries no build tools.
# tests/test_deploy.py repeats this stage's install from the COPYed paths only.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY edge ./edge
COPY plugins ./plugins
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    POS_EDGE_CONFIG=/etc/pos-edge/tenants.yaml
COPY --from=build /wheels /wheels
# --no-index: only the wheels built above, nothing fetched at this stage.
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels \
    && groupadd --system --gid 10001 pos-edge \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/pos-edge --create-home \
       --shell /usr/sbin/nologin pos-edge \
    && mkdir -p /etc/pos-edge
# No configuration is baked in: mount tenants.yaml at /etc/pos-edge/tenants.yaml
# (in Kubernetes mount the ConfigMap as the directory /etc/pos-edge, not subPath).
# A numeric user: Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
# SQLite state belongs here, on a volume: write the store as an absolute path
# (sqlite:////var/lib/pos-edge/pos-edge.db). A relative one resolves next to
# tenants.yaml, which a ConfigMap mount makes read-only.
WORKDIR /var/lib/pos-edge
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["pos-edge", "serve", "--host", "0.0.0.0", "--port", "8000"]
