# pos-edge: slim, non-root. Mount the configuration at /etc/pos-edge/tenants.yaml
# and pass secrets as environment variables referenced from it.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY edge ./edge
COPY plugins ./plugins
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    POS_EDGE_CONFIG=/etc/pos-edge/tenants.yaml
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /var/lib/pos-edge --create-home pos-edge \
    && mkdir -p /etc/pos-edge
# No configuration is baked in: mount tenants.yaml at /etc/pos-edge/tenants.yaml.
USER pos-edge
# A relative sqlite:/// store path in tenants.yaml resolves here (a volume in production).
WORKDIR /var/lib/pos-edge
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["pos-edge", "serve", "--host", "0.0.0.0", "--port", "8000"]
