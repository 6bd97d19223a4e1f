# syntax=docker/dockerfile:1
# One image for every ETP process (the four services, their workers, the migrations), chosen by
# the command: `python -m auth_service`, `python -m experiment_service.workers`, `bin/migrate auth`…
# docker-compose.yml at the top level runs the whole stand from it.

# --- the portal (web/dist): the TypeScript client generated from openapi/public.yaml, then Vite.
FROM node:20-bookworm AS web
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json Makefile ./
COPY openapi/ openapi/
COPY web/ web/
# `make web`: npm ci, the client from the spec, then the portal's build (as on a developer's machine).
RUN PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 make web

# --- the Python package, installed (editable: the code finds migrations/ and openapi/ beside
# itself) into a virtualenv at the path it keeps in the runtime image.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml ./
COPY libs/ libs/
COPY services/ services/
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -e .

# --- runtime: the virtualenv, the sources it points at, migrations, specs and the portal.
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    ETP_HEALTH_URL=http://127.0.0.1:8000/health
RUN groupadd --system --gid 10001 etp \
    && useradd --system --uid 10001 --gid etp --home-dir /var/lib/etp --shell /usr/sbin/nologin etp \
    && mkdir -p /var/lib/etp/jwt-keys /var/lib/etp/artifacts /var/lib/etp/spool \
    && chown -R etp:etp /var/lib/etp
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY bin/ bin/
COPY migrations/ migrations/
COPY openapi/ openapi/
COPY --from=web /src/web/dist web/dist
USER etp
# Each service sets ETP_HEALTH_URL to its own port (docker-compose.yml); workers and the
# migrations, which serve no HTTP, turn the check off there.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['ETP_HEALTH_URL'], timeout=2)"]
EXPOSE 8000 8001 8002 8003 9000 9001 9002 9003
CMD ["python", "-m", "gateway_service"]
