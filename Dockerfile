# One image for every role: `api`, `worker`, `migrate` or `up` (see docker-compose.yml).
# CPU wheels of torch by default; build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126
# for a CUDA image.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    D2L_DATA_DIR=/data \
    D2L_ARTIFACT_DIR=/artifacts

RUN groupadd --system --gid 10001 d2l \
    && useradd --system --uid 10001 --gid d2l --home-dir /app --shell /usr/sbin/nologin d2l

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY api ./api
COPY core ./core
COPY models ./models
COPY worker ./worker
COPY migrations ./migrations
COPY d2l_client ./d2l_client
RUN pip install --extra-index-url "${TORCH_INDEX}" . \
    && mkdir -p /data /artifacts \
    && chown -R d2l:d2l /data /artifacts

USER d2l
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

ENTRYPOINT ["d2l-service"]
CMD ["up", "--host", "0.0.0.0", "--port", "8000"]
