# syntax=docker/dockerfile:1
# One image for the API, the SAQ worker and migrations; only the command differs:
#   API (default):  uvicorn app.main:app ...
#   worker:         saq app.worker.settings
#   migrations:     alembic upgrade head

# Both stages must share one Python build: the virtualenv made in the builder links to
# /usr/local/bin/python3.11 of this image.
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

# uv comes from its PyPI package, pinned to the version that wrote uv.lock.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

# Install into /opt/venv (copied whole into the final stage), with the image's own Python,
# and precompile bytecode once here because the runtime user cannot write .pyc files.
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

WORKDIR /src

# Dependencies first, from the lock alone: this layer is rebuilt only when pyproject.toml or
# uv.lock change, so a code change rebuilds in seconds. No `--extra dev`: test and lint tools
# stay out of the image. `--extra tracing`: the OpenTelemetry packages, loaded only when
# OTEL_EXPORTER_OTLP_ENDPOINT is set (app/tracing). The project is not a package (tool.uv
# package = false), so nothing of the app is installed here; its code is copied into the
# final stage as plain files.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project --extra tracing

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# PYTHONPATH=/app lets `saq` and `alembic` (console scripts, not run from /app's sys.path)
# import the app package. FORWARDED_ALLOW_IPS is read by uvicorn: trust X-Forwarded-* from
# any peer, which is right behind a reverse proxy / ingress; set it to the proxy's address
# (or 127.0.0.1) where clients can reach the container directly.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    FORWARDED_ALLOW_IPS=*

# A fixed numeric id, so orchestrators can check "runs as non-root" without /etc/passwd.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Code owned by root and read-only to the app user: a compromised process cannot rewrite it.
COPY alembic.ini ./
COPY db ./db
COPY app ./app
# The app's bytecode compiled once here too: the app user cannot write .pyc files, and
# compiling at every start costs each process time and memory.
RUN python -m compileall -q app db

USER 10001:10001

EXPOSE 8000

# The slim image has no curl; Python's urllib is enough for a liveness probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

# One uvicorn process per container (scale with replicas, or set WEB_CONCURRENCY); proxy
# headers honoured per FORWARDED_ALLOW_IPS; no reload; no Server header advertising the
# version; a graceful shutdown bounded at 10 s (app/shutdown.py closes sockets with 1001);
# no uvicorn access log: the app writes its own JSON line per request (scripts/bench
# serves its baseline and the API with these same settings).
# uvicorn's own limits: past 2,000 open connections and tasks it answers 503 instead of
# growing without bound; idle keep-alive connections close after 5 s; a WebSocket message
# over 64 KiB closes the socket with 1009 (API.md); h11 (when used instead of httptools)
# buffers at most 16 KiB of an incomplete request. httptools has no header size limit of
# its own: the image belongs behind the edge (scripts/edge/nginx.conf) or another proxy
# that bounds headers and slow clients.
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--no-server-header", "--no-access-log", "--timeout-graceful-shutdown", "10", "--limit-concurrency", "2000", "--timeout-keep-alive", "5", "--ws-max-size", "65536", "--h11-max-incomplete-event-size", "16384"]
