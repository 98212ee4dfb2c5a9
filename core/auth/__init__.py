"""Who may do what, and how much: API tokens (`tokens`), each owner seeing only their own rows
(`ownership`), and the per-owner bound on stored bytes (`storage_quota`; the bound on queued jobs
is core/jobs/quota.py)."""
