"""Jobs: what a client asks the service to train, fine-tune, select, sweep or predict, from the
request to the last epoch's row.

The spec: `schemas` (JobCreate and its parts, what GET /v1/jobs answers), `hyperparameters`,
`sweep_schemas`, `predict_jobs` (a `kind: "predict"` job), `finetune` (where its weights come
from). At submission: `references` (every stored thing a job names, resolved as its owner sees
it), `model_size` and `memory_estimate` with `admission` (a job no worker could hold is refused).
The rows: `queries` (jobs and checkpoints), `metrics` (recorded each epoch, read at scale),
`sweep_queries`, `lost_messages` (what the reaper sends again), and `logs` (a job's log file).
"""
