#!/usr/bin/env bash
# The service's own dependencies for the lent GPU machine, whose image has torch, numpy, scikit-learn
# and matplotlib but not these, nor a network: wheels for its Python (3.12) go into .gpu_site (git
# ignores it), which the `run` call carries and bench/gpu_check.sh puts on PYTHONPATH.
set -euo pipefail
rm -rf .gpu_site
python3 -m pip install -q --target .gpu_site --python-version 3.12 --implementation cp \
  --only-binary=:all: --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_28_x86_64 \
  fastapi pydantic-settings 'sqlalchemy>=2.0.30' alembic celery redis python-multipart \
  uvicorn prometheus-client tqdm aiohttp
find .gpu_site -name __pycache__ -prune -exec rm -rf {} +
du -sh .gpu_site
