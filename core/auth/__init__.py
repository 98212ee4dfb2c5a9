"""Who may do what, and how much: API tokens (`tokens`), each owner seeing only their own rows
(`ownership`), and the per-owner bounds on jobs (`job_quota`) and on stored bytes
(`storage_quota`)."""
