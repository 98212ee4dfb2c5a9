# One image for every role: `api`, `worker`, `migrate`, `token` or `up` (see docker-compose.yml).
#
#   docker build -t d2l-service .
#
# Every package comes from the committed lock (requirements/s3.txt, exported from uv.lock), so
# the image holds exactly the versions the test suite passed with. PyPI's torch wheel carries its
# own CUDA libraries and runs on CPU-only hosts too; a GPU host needs only its NVIDIA driver and
# the NVIDIA Container Toolkit.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    D2L_DATA_DIR=/data

RUN groupadd --system --gid 10001 d2l \
    && useradd --system --uid 10001 --gid d2l --home-dir /app --shell /usr/sbin/nologin d2l

WORKDIR /app
# The locked dependencies first (hash-checked), in a layer of their own that a code change keeps.
COPY requirements/s3.txt ./requirements/s3.txt
RUN pip install --require-hashes -r requirements/s3.txt
COPY pyproject.toml README.md alembic.ini ./
COPY api ./api
COPY core ./core
COPY models ./models
COPY worker ./worker
COPY migrations ./migrations
COPY d2l_client ./d2l_client
COPY cli ./cli
# The service itself, its dependencies already there (the lock's s3 set: D2L_ARTIFACT_URL=s3://...
# works in every image).
RUN pip install --no-deps . \
    && mkdir -p /data \
    && chown -R d2l:d2l /data

USER d2l
EXPOSE 8000
# The API's liveness; docker-compose.yml gives worker containers a Celery ping instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

ENTRYPOINT ["d2l-service"]
CMD ["up", "--host", "0.0.0.0", "--port", "8000"]
