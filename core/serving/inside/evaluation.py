"""A model over (the first examples of) its job's test split, once: each example's label,
prediction and loss, stored as an artifact keyed by the model id, from which the confusion matrix
and the top losses are read.

A model's weights never change, so neither does its evaluation: thirty learners asking for a
confusion matrix cost one pass over the split (the API makes concurrent first requests wait for
one), and later requests, in any API process, read the stored answer. The key holds the bound on
examples, so raising D2L_INSIDE_MAX_TEST_EXAMPLES evaluates anew.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from core import preprocessing
from core.artifacts import BaseArtifactStore
from core.datasets import load_raw
from core.errors import InvalidInputError
from core.serving.inference import LoadedModel
from core.serving.inside.samples import DatasetSplits, split_rows
from core.serving.inside.schemas import ConfusionOut, TestEvaluationOut, TopLoss, TopLossesOut

EVAL_BATCH = 64  # examples a forward pass takes: a ResNet's activations stay ~100 MB


@dataclass(frozen=True)
class TestEvaluation:
    """Per example of the evaluated test examples, in split order."""

    model_id: str
    dataset: str
    test_examples: int
    rows: list[int]  # dataset rows
    labels: list[int]
    predictions: list[int]
    probabilities: list[float]  # of the predicted class
    label_probabilities: list[float]
    losses: list[float]

    @property
    def evaluated(self) -> int:
        return len(self.rows)


def evaluation_key(model_id: str, max_examples: int) -> str:
    return f"{evaluations_folder(model_id)}/test-evaluation-{max_examples}.json"


def evaluations_folder(model_id: str) -> str:
    """Where a model's stored test evaluations live: deleted with the model."""
    return f"inside/{model_id}"


def check_classifier(loaded: LoadedModel) -> None:
    if loaded.task != "classification" or loaded.memory is not None:
        raise InvalidInputError("the model is a regression: it has no classes to confuse")


def stored_or_evaluated(
    store: BaseArtifactStore,
    loaded: LoadedModel,
    *,
    model_id: str,
    splits: DatasetSplits,
    root: Path,
    max_examples: int,
) -> TestEvaluation:
    """The stored evaluation of the model, or a new one, stored for the next request."""
    check_classifier(loaded)
    key = evaluation_key(model_id, max_examples)
    stored = store.read_unchecked(key)
    if stored is not None:
        try:
            return TestEvaluation(**json.loads(stored))
        except (ValueError, TypeError):
            pass  # written by another version: evaluate again
    evaluation = evaluate(loaded, model_id=model_id, splits=splits, root=root, limit=max_examples)
    store.write_bytes(key, json.dumps(asdict(evaluation)).encode())
    return evaluation


def evaluate(
    loaded: LoadedModel, *, model_id: str, splits: DatasetSplits, root: Path, limit: int
) -> TestEvaluation:
    """The first `limit` test examples through the model, as /predict runs them."""
    test = split_rows(splits, "test", root=root, prep=loaded.preprocessing)
    rows = test.rows[:limit]
    labels = test.targets[rows]
    known = len(loaded.class_names)
    if labels.dtype != torch.int64 or (len(labels) and int(labels.max()) >= known):
        raise InvalidInputError(f"the labels of {splits.name!r} are not the model's classes")
    log_probabilities = torch.cat(
        [
            log_softmax(loaded, test.inputs[rows[start : start + EVAL_BATCH]])
            for start in range(0, len(rows), EVAL_BATCH)
        ]
        or [torch.zeros(0, len(loaded.class_names))]
    )
    best, predictions = log_probabilities.max(dim=1)
    label_log_probabilities = log_probabilities.gather(1, labels[:, None])[:, 0]
    return TestEvaluation(
        model_id=model_id,
        dataset=splits.name,
        test_examples=len(test.rows),
        rows=rows.tolist(),
        labels=labels.tolist(),
        predictions=predictions.tolist(),
        probabilities=best.exp().tolist(),
        label_probabilities=label_log_probabilities.exp().tolist(),
        losses=(-label_log_probabilities).tolist(),
    )


def log_softmax(loaded: LoadedModel, raw: torch.Tensor) -> torch.Tensor:
    """Log class probabilities of raw samples, through the steps of `run_forward` (whose
    probabilities round a confident mistake's loss to infinity)."""
    with torch.inference_mode():
        inputs = preprocessing.apply(loaded.preprocessing, raw).to(loaded.device)
        return F.log_softmax(loaded.forward(inputs), dim=1).float().cpu()


def summary(evaluation: TestEvaluation, *, job_id: str) -> TestEvaluationOut:
    correct = sum(p == t for p, t in zip(evaluation.predictions, evaluation.labels, strict=True))
    return TestEvaluationOut(
        model_id=evaluation.model_id,
        job_id=job_id,
        dataset=evaluation.dataset,
        test_examples=evaluation.test_examples,
        evaluated=evaluation.evaluated,
        cut=evaluation.evaluated < evaluation.test_examples,
        accuracy=correct / evaluation.evaluated if evaluation.evaluated else 0.0,
    )


def confusion(
    evaluation: TestEvaluation, *, job_id: str, class_names: tuple[str, ...]
) -> ConfusionOut:
    """matrix[true][predicted] over the evaluated examples."""
    matrix = [[0] * len(class_names) for _ in class_names]
    for label, prediction in zip(evaluation.labels, evaluation.predictions, strict=True):
        matrix[label][prediction] += 1
    return ConfusionOut(
        **summary(evaluation, job_id=job_id).model_dump(),
        class_names=list(class_names),
        matrix=matrix,
    )


def top_losses(
    evaluation: TestEvaluation,
    *,
    job_id: str,
    class_names: tuple[str, ...],
    root: Path,
    limit: int,
) -> TopLossesOut:
    """The `limit` evaluated examples with the highest loss, highest first, with their raw
    samples."""
    inputs = load_raw(evaluation.dataset, root=root).inputs
    order = sorted(range(evaluation.evaluated), key=lambda i: -evaluation.losses[i])[:limit]
    items = [
        TopLoss(
            index=i,
            dataset_index=evaluation.rows[i],
            label=class_names[evaluation.labels[i]],
            label_index=evaluation.labels[i],
            prediction=class_names[evaluation.predictions[i]],
            prediction_index=evaluation.predictions[i],
            probability=evaluation.probabilities[i],
            label_probability=evaluation.label_probabilities[i],
            loss=evaluation.losses[i],
            sample=inputs[evaluation.rows[i]].tolist(),
        )
        for i in order
    ]
    return TopLossesOut(**summary(evaluation, job_id=job_id).model_dump(), items=items)
