"""k-fold cross-validation and model selection, as the course describes it (ch. 3.6).

Each candidate configuration trains k times, each time holding out one fold of the training data
(the train and validation splits pooled); the candidate with the best mean held-out metric wins
and is retrained on all of it, then evaluated once on the untouched test split.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from core.jobs.kinds.kfold import candidate_specs
from core.jobs.schemas import JobCreate, KFold
from worker.batches import DataPlan
from worker.engine import load_data, run_training, training_result
from worker.training_loop import autocast
from worker.training_state import Callbacks, EpochReport


def fold_indices(count: int, *, k: int, seed: int) -> list[torch.Tensor]:
    """k disjoint index sets covering range(count), from a seeded shuffle."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return list(order.tensor_split(k))


class ProgressCounter:
    """Forwards epoch reports with metric splits tagged (`c0/f2/val`) and a running epoch count."""

    def __init__(self, callbacks: Callbacks) -> None:
        self.callbacks = callbacks
        self.done = 0

    def reporter(self, tag: str | None) -> Any:
        def report(report: EpochReport) -> None:
            self.done += 1
            metrics = report.metrics
            if tag is not None:  # fold runs: summary metrics only, tagged with their fold
                metrics = {
                    (f"{tag}/{split}", name): v
                    for (split, name), v in metrics.items()
                    if split != "layers"
                }
            self.callbacks.on_epoch(
                EpochReport(
                    epoch=report.epoch, step=report.step, metrics=metrics, progress=self.done
                )
            )

        return report


def fold_summary(fold: int, history: list[EpochReport]) -> dict[str, Any]:
    final = history[-1].metrics
    return {
        "fold": fold,
        "epochs": len(history),
        "train_loss": final[("train", "loss")],
        "train_acc": final[("train", "acc")],
        "val_loss": final[("val", "loss")],
        "val_acc": final[("val", "acc")],
    }


def candidate_summary(index: int, label: str, folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation over the folds of each final metric."""
    summary: dict[str, Any] = {"index": index, "label": label, "tag": f"c{index}", "folds": folds}
    for name in ("train_loss", "train_acc", "val_loss", "val_acc"):
        values = [fold[name] for fold in folds]
        summary[f"mean_{name}"] = statistics.fmean(values)
        summary[f"std_{name}"] = statistics.stdev(values)
    return summary


def cross_validate(
    spec: JobCreate,
    *,
    device: torch.device,
    data_dir: Any,
    callbacks: Callbacks | None = None,
    plan: DataPlan | None = None,
) -> dict[str, Any]:
    """Run the k-fold job `spec`; the result names the winner and its test error.

    Folds are sets of rows of the same samples: no fold copies any data."""
    callbacks = callbacks or Callbacks()
    settings = spec.kfold or KFold()
    autocast(spec.hyperparameters, device)
    data, feed = load_data(spec, data_dir, device, plan or DataPlan())
    pool = data.train.joined(data.val)
    folds = fold_indices(len(pool), k=settings.k, seed=spec.dataset.split_seed)
    counter = ProgressCounter(callbacks)
    candidates = []
    specs = candidate_specs(spec)
    for index, (label, candidate) in enumerate(specs):
        rows = []
        for fold, held_out in enumerate(folds, start=1):
            kept = torch.cat([f for other, f in enumerate(folds, start=1) if other != fold])
            outcome = run_training(
                candidate,
                data,
                train=pool.subset(kept),
                val=pool.subset(held_out),
                device=device,
                report=counter.reporter(f"c{index}/f{fold}"),
                should_stop=callbacks.should_stop,
                feed=feed,
            )
            rows.append(fold_summary(fold, outcome.state.history))
        candidates.append(candidate_summary(index, label, rows))
    winner = select(candidates, settings.select_by)
    final = run_training(
        specs[winner["index"]][1],
        data,
        train=pool,
        val=None,
        device=device,
        report=counter.reporter(None),
        checkpoint=callbacks.on_checkpoint,
        should_stop=callbacks.should_stop,
        feed=feed,
    )
    return {
        **training_result(final, data),
        "kind": "kfold",
        "k": settings.k,
        "select_by": settings.select_by,
        "candidates": candidates,
        "winner": winner["label"],
        "fold_sizes": [len(f) for f in folds],
    }


def select(candidates: list[dict[str, Any]], select_by: str) -> dict[str, Any]:
    """The candidate with the best mean held-out metric (highest accuracy or lowest loss)."""
    key = f"mean_{select_by}"
    if select_by.endswith("loss"):
        return min(candidates, key=lambda c: c[key])
    return max(candidates, key=lambda c: c[key])
