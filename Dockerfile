# Synapse image: the same code runs the web process (daphne), the Temporal
# worker and the one-shot migrate job; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SYNAPSE_DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

RUN useradd --create-home --uid 10001 synapse \
    && mkdir -p /data /app/staticfiles \
    && chown synapse:synapse /data /app/staticfiles

# WeasyPrint (the final test report's PDF) needs Pango and a font.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
       fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Requirements first, so a code change doesn't reinstall every package.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# collectstatic only reads settings; the build has no database or secrets.
RUN DEBUG=false SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && chown -R synapse:synapse /app/staticfiles

USER synapse
EXPOSE 8000

CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "synapse.asgi:application"]
