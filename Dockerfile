# One image for every role: `api`, `worker`, `migrate`, `token` or `up` (see docker-compose.yml).
#
#   docker build -t d2l-service:cpu .                                   # CPU wheels of torch
#   docker build --build-arg TORCH_VARIANT=cu126 -t d2l-service:cu126 .  # CUDA 12.6 wheels
#
# TORCH_VARIANT names a wheel index of download.pytorch.org (cpu, cu118, cu121, cu124, cu126,
# cu128). CUDA wheels carry their own CUDA libraries, so both images start from the same slim
# Python; a GPU host needs only its NVIDIA driver and the NVIDIA Container Toolkit.
FROM python:3.11-slim

ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX=https://download.pytorch.org/whl/${TORCH_VARIANT}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    D2L_DATA_DIR=/data

RUN groupadd --system --gid 10001 d2l \
    && useradd --system --uid 10001 --gid d2l --home-dir /app --shell /usr/sbin/nologin d2l

WORKDIR /app
# torch and torchvision first, from the variant's own index (the ranges are pyproject's), so the
# install of the service below finds them satisfied and never swaps in another build.
RUN pip install --index-url "${TORCH_INDEX}" "torch>=2.4,<2.15" "torchvision>=0.19,<0.30"
COPY pyproject.toml README.md alembic.ini ./
COPY api ./api
COPY core ./core
COPY models ./models
COPY worker ./worker
COPY migrations ./migrations
COPY d2l_client ./d2l_client
# The s3 extra: D2L_ARTIFACT_URL=s3://... (MinIO, AWS S3) works in every image.
RUN pip install ".[s3]" \
    && mkdir -p /data \
    && chown -R d2l:d2l /data

USER d2l
EXPOSE 8000
# The API's liveness; docker-compose.yml gives worker containers a Celery ping instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

ENTRYPOINT ["d2l-service"]
CMD ["up", "--host", "0.0.0.0", "--port", "8000"]
