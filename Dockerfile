# Shokti: one image for web (granian, `python -m shokti.web`), the Celery workers and beat; see docker-compose.yml.
# The `whatsapp_web` target adds Debian's Chromium for the WhatsApp Web worker.
FROM python:3.11-slim AS app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SHOKTI_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    WEB_HOST=0.0.0.0 \
    PORT=8000

WORKDIR /app
# A fixed uid, so the shared tmpfs for Prometheus (docker-compose.yml) can be made writable for it.
RUN groupadd --system --gid 1000 shokti \
    && useradd --system --uid 1000 --gid shokti --home-dir /app --shell /usr/sbin/nologin shokti

# Dependencies first: this layer is reused until requirements/base.txt changes.
COPY requirements/base.txt requirements/base.txt
RUN pip install -r requirements/base.txt

COPY . .
# collectstatic needs settings only, no database or Redis: it runs with the embedded defaults.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v 0 \
    && mkdir -p /app/var/whatsapp_session \
    && chown -R shokti:shokti /app/var /app/staticfiles

USER shokti
EXPOSE 8000
CMD ["python", "-m", "shokti.web"]


FROM app AS whatsapp_web
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-noto-core \
    && rm -rf /var/lib/apt/lists/*
ENV CHROMIUM_EXECUTABLE_PATH=/usr/bin/chromium
USER shokti
CMD ["celery", "-A", "shokti", "worker", "--loglevel=INFO", "--concurrency=1", "-Q", "whatsapp_web", "-n", "whatsapp_web@%h"]
