"""The engine of a predict job: a trained model over a dataset split, in batches, to a file.

Each batch goes through the very steps of the online predict endpoint (core/serving/inference.py:
`run_forward`, then `respond`), so a sample gets the same class, label and top-k probabilities
offline as online. Knows nothing of the database or Celery: the runner supplies `should_stop`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from core.artifacts import BaseArtifactStore
from core.datasets import get_dataset, load_raw
from core.datasets.registry import dataset_splits
from core.jobs.predict_jobs import MEDIA_TYPES, PredictJobCreate
from core.serving.inference import LoadedModel, load_model, respond, run_forward
from worker.training_state import JobCancelled, StepProgress


@dataclass(frozen=True)
class Samples:
    """The split to predict: its dataset row numbers, every raw sample of the dataset (read a
    batch of rows at a time, never copied whole), and the split's labels (if any)."""

    indices: torch.Tensor
    inputs: torch.Tensor
    targets: torch.Tensor | None
    target_names: tuple[str, ...]


def load_samples(spec: PredictJobCreate, data_dir: Path) -> Samples:
    """The raw samples of the job's split, chosen exactly as a train job with the same dataset
    settings splits them."""
    dataset = spec.dataset
    info = get_dataset(dataset.name, root=data_dir)
    raw = load_raw(dataset.name, root=data_dir)
    if dataset.split == "all":
        indices = torch.arange(len(raw.targets))
    else:
        train, val, test = dataset_splits(
            raw,
            val_fraction=dataset.val_fraction,
            test_fraction=dataset.test_fraction,
            seed=dataset.split_seed,
        )
        indices = {"train": train, "val": val, "test": test}[dataset.split]
    targets = raw.targets[indices] if len(raw.targets) == len(raw.inputs) else None
    return Samples(indices, raw.inputs, targets, info.class_names)


def predict_rows(
    loaded: LoadedModel,
    model_id: str,
    samples: Samples,
    *,
    batch_size: int,
    top_k: int | None,
    should_stop: Callable[[], bool],
    progress: StepProgress | None = None,
) -> Iterator[dict[str, Any]]:
    """One row per sample: its dataset index, the prediction as online, and its label.
    `progress` counts batches (the heartbeat records it as the job's live step)."""
    same_labels = samples.target_names == loaded.class_names
    progress = progress or StepProgress()
    progress.done, progress.total = 0, -(-len(samples.indices) // batch_size)
    for start in range(0, len(samples.indices), batch_size):
        if should_stop():
            raise JobCancelled(f"stopped after {start} of {len(samples.indices)} samples")
        raw = samples.inputs[samples.indices[start : start + batch_size]]
        outputs = run_forward(loaded, raw)
        response = respond(loaded, model_id, outputs, top_k=top_k)
        predictions: list[BaseModel] = list(response.predictions)
        for offset, prediction in enumerate(predictions):
            row: dict[str, Any] = {"index": int(samples.indices[start + offset])}
            row.update(prediction.model_dump())
            if samples.targets is not None:
                target = samples.targets[start + offset].item()
                if loaded.task == "regression":
                    row["target"] = float(target)
                else:
                    row["target"] = int(target)
                    row["target_label"] = samples.target_names[int(target)]
                    if same_labels:
                        row["correct"] = row["class_index"] == row["target"]
            yield row
        progress.done += 1


def prediction_scores(rows: list[dict[str, Any]], *, task: str) -> dict[str, Any]:
    """Count, and accuracy (classification, labels the model knows) or mean squared error."""
    summary: dict[str, Any] = {"count": len(rows)}
    if task == "regression":
        errors = [(row["value"] - row["target"]) ** 2 for row in rows if "target" in row]
        if errors:
            summary["mse"] = sum(errors) / len(errors)
        return summary
    judged = [row["correct"] for row in rows if "correct" in row]
    summary["labelled"] = bool(judged)
    if judged:
        summary["correct"] = sum(judged)
        summary["accuracy"] = sum(judged) / len(judged)
    return summary


def encode(rows: list[dict[str, Any]], *, file_format: str, top_k: int) -> bytes:
    """JSON lines (one object a sample, probabilities as {label: p}) or CSV (one column pair a
    rank: top1_label, top1_probability, ...)."""
    if file_format == "jsonl":
        return "".join(json.dumps(row) + "\n" for row in rows).encode()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    header: list[str] = []
    for row in rows:
        flat = {key: value for key, value in row.items() if key != "probabilities"}
        for rank, (label, probability) in enumerate(row.get("probabilities", {}).items(), 1):
            flat[f"top{rank}_label"], flat[f"top{rank}_probability"] = label, probability
        if not header:
            header = list(flat) if "probabilities" not in row else _csv_header(row, top_k)
            writer.writerow(header)
        writer.writerow([flat.get(column, "") for column in header])
    return text.getvalue().encode()


def _csv_header(row: dict[str, Any], top_k: int) -> list[str]:
    ranks = [
        f"top{rank}_{what}" for rank in range(1, top_k + 1) for what in ("label", "probability")
    ]
    labels = [key for key in ("target", "target_label", "correct") if key in row]
    return ["index", "class_index", "label", *ranks, *labels]


def run_predictions(
    job_id: str,
    spec: PredictJobCreate,
    payload: dict[str, Any],
    *,
    device: torch.device,
    store: BaseArtifactStore,
    data_dir: Path,
    should_stop: Callable[[], bool],
    progress: StepProgress | None = None,
) -> dict[str, Any]:
    """Predict the job's split with the checkpoint `payload` (loaded `weights_only`), store the
    file, and return the job's result: the summary and where the file is."""
    assert spec.model_id is not None  # the API resolved it at submission
    loaded = load_model(payload, device)  # eval mode; run_forward adds inference_mode
    samples = load_samples(spec, data_dir)
    rows = list(
        predict_rows(
            loaded,
            spec.model_id,
            samples,
            batch_size=spec.batch_size,
            top_k=spec.top_k,
            should_stop=should_stop,
            progress=progress,
        )
    )
    top_k = min(spec.top_k or len(loaded.class_names), len(loaded.class_names))
    data = encode(rows, file_format=spec.format, top_k=top_k)
    stored = store.write_bytes(f"jobs/{job_id}/{spec.artifact_path}", data)
    return {
        "task": loaded.task,
        "model_id": spec.model_id,
        "dataset": spec.dataset.name,
        "split": spec.dataset.split,
        **prediction_scores(rows, task=loaded.task),
        "predictions": {
            "path": stored.path,
            "sha256": stored.sha256,
            "bytes": stored.bytes,
            "format": spec.format,
            "media_type": MEDIA_TYPES[spec.format],
        },
    }
