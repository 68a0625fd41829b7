# Production image: gunicorn (its ASGI worker) serving the API, static files through ServeStatic.
# Build: docker build -t chatapi .     Run: see README, "Deploying".
# Both stages use the same base image, so the virtualenv's interpreter path is valid in the second.

FROM python:3.11-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt


FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    PORT=8000 \
    DATABASE_URL=sqlite:////app/data/db.sqlite3

# A system user with no login; the code stays root-owned and read-only to it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY . .

# Static files are built into the image; the throwaway key exists for this one command only.
RUN SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/data \
    && chown app:app /app/data

USER 10001:10001
EXPOSE 8000
# Healthy when /health answers 200 (503 means the database is unreachable). No curl in slim images.
# The Host header is the first ALLOWED_HOSTS entry, so the probe passes Django's host check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; host = os.environ.get('ALLOWED_HOSTS', 'localhost').split(',')[0].strip(' .*') or 'localhost'; r.urlopen(r.Request('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), headers={'Host': host}), timeout=4)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
