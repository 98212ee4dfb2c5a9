"""Jobs: what a client asks the service to train, fine-tune, select, sweep or predict, from the
request to the last epoch's row.

The kinds: `kind_registry` (cards by name) and `kinds/` (one card a kind: train, finetune, kfold,
sweep, predict; what each does differently, from its body's rules to how it is cancelled).
The bodies: `schemas` (JobCreate, the training kinds' body, and its parts), `hyperparameters`,
`sweep_schemas`, `predict_jobs` (a predict job's body); `views` (what GET /v1/jobs answers);
`finetune` (where a fine-tune's weights come from); `quota` (jobs an owner may queue).
At submission: `references` (every stored thing a job names, resolved as its owner sees it),
`model_size` and `memory_estimate` with `admission` (a job no worker could hold is refused).
The rows: `queries` (jobs and checkpoints), `metrics` (recorded each epoch, read at scale),
`sweep_queries`, `lost_messages` (what the reaper sends again), and `logs` (a job's log file).
"""
