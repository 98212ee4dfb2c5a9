"""Experiments: named groups of jobs, and runs compared. `queries` reads an experiment at a glance
(its jobs by status, its best run) and its runs side by side, `schemas` is what the API answers,
`plots` draws the course's learning curves and attention heatmaps as PNG."""
