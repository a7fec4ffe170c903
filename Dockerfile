# trainwreck service image: `docker build -t trainwreck .`
# Runs `trainwreck serve` on 0.0.0.0:8000; it migrates the store to the newest schema at start.
#
# Settings come from TRAINWRECK_* environment variables (see docs/settings.md). The important ones:
#   TRAINWRECK_DATABASE_URL  postgresql+psycopg://user:password@host:5432/db (unset: SQLite in /data)
#   TRAINWRECK_AUTH          auto (default) | on | off. Bound to 0.0.0.0 as here, `auto` already
#                            requires an API token on every request; set `on` to say so explicitly.
#                            `off` only behind a proxy that authenticates for you.
#   TRAINWRECK_PUBLIC_URL    the address people and Slack reach the service at, used in links
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRAINWRECK_DATA_DIR=/data

RUN useradd --system --create-home --home-dir /home/trainwreck trainwreck \
    && mkdir /data && chown trainwreck /data

WORKDIR /srv/trainwreck
# A built install with the service's dependencies; the signatures, rules, frameworks and migrations
# travel inside the package.
COPY . .
RUN pip install '.[server]' && rm -rf /srv/trainwreck/build

USER trainwreck
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["trainwreck", "serve", "--host", "0.0.0.0", "--port", "8000"]
