"""`kind: "finetune"`: start from trained weights (a job's model or an uploaded state_dict) with a
new head, the backbone frozen or slower (ch. 14.2)."""

from __future__ import annotations

from core.jobs.kind_registry import register_kind
from core.jobs.kinds.training import TrainingKind


@register_kind
class FineTune(TrainingKind):
    name = "finetune"
    takes = frozenset({"finetune"})
    needs = frozenset({"finetune"})
