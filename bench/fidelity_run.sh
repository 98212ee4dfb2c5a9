#!/usr/bin/env bash
# Run bench/fidelity.py against a throwaway service: a fresh D2L_DATA_DIR, SQLite and the
# filesystem broker, started here and stopped at the end. Arguments go to fidelity.py, e.g.
#   bench/fidelity_run.sh --device cuda            # every recipe; digits where Fashion-MNIST is absent
#   bench/fidelity_run.sh --synthetic-only --device cpu
# FIDELITY_PORT (8765) and FIDELITY_CONCURRENCY (jobs trained at once, 1) tune the service.
# One torch thread unless D2L_TORCH_THREADS says otherwise: the recipes' numbers were found so,
# and a run at the edge of stability (NiN) is reproducible only with the same float sums.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${FIDELITY_PORT:-8765}
D2L_DATA_DIR=$(mktemp -d)
export D2L_DATA_DIR
export D2L_TORCH_THREADS=${D2L_TORCH_THREADS:-1}
python3 -c 'import sys; from cli.main import main; sys.exit(main())' up --port "$port" \
    --concurrency "${FIDELITY_CONCURRENCY:-1}" >"$D2L_DATA_DIR/service.log" 2>&1 &
service=$!
trap 'kill "$service" 2>/dev/null; wait "$service" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
    python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/readyz')" \
        2>/dev/null && break
    sleep 1
done
python3 bench/fidelity.py --url "http://127.0.0.1:$port" --invoked-as "bench/fidelity_run.sh $*" "$@"
