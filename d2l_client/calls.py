"""Every endpoint as a request description, so the sync and async clients send the same thing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    data: dict[str, Any] | None = None


def clean(**params: Any) -> dict[str, Any]:
    """Query parameters without the ones left at None (the server's defaults apply)."""
    return {key: value for key, value in params.items() if value is not None}


def job_body(
    kind: str,
    *,
    arch: str,
    dataset: str,
    experiment: str | None = None,
    config: dict[str, Any] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    device: str | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """A POST /v1/jobs body from the few things people usually set."""
    body: dict[str, Any] = {
        "kind": kind,
        "model": {"arch": arch, "config": config or {}},
        "dataset": {"name": dataset},
        "hyperparameters": hyperparameters or {},
    }
    if experiment is not None:
        body["experiment"] = experiment
    if device is not None:
        body["device"] = device
    body.update({key: value for key, value in sections.items() if value is not None})
    return body


def predict_job_body(
    model: str,
    *,
    dataset: str,
    split: str | None = None,
    top_k: int | None = None,
    format: str | None = None,
    device: str | None = None,
    experiment: str | None = None,
) -> dict[str, Any]:
    """A POST /v1/jobs body that predicts a whole dataset split on a worker."""
    dataset_spec: dict[str, Any] = {"name": dataset, **clean(split=split)}
    return {
        "kind": "predict",
        "model": model,
        "dataset": dataset_spec,
        **clean(top_k=top_k, format=format, device=device, experiment=experiment),
    }


def sweep_settings(
    space: dict[str, Any],
    *,
    trials: int | None = None,
    max_concurrent: int | None = None,
    search: str | None = None,
    metric: str | None = None,
    direction: str | None = None,
    prune: str | None = None,
    **more: Any,
) -> dict[str, Any]:
    """A sweep's `sweep` section; settings left at None take the server's defaults."""
    return clean(
        space=space,
        trials=trials,
        max_concurrent=max_concurrent,
        search=search,
        metric=metric,
        direction=direction,
        prune=prune,
        **more,
    )


def metrics(
    job_id: str,
    *,
    names: Sequence[str] = (),
    max_points: int | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> Call:
    params = clean(names=",".join(names) or None, max_points=max_points, limit=limit, offset=offset)
    return Call("GET", f"/v1/jobs/{job_id}/metrics", params)


def list_jobs(
    *,
    experiment: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    parent: str | None = None,
) -> Call:
    params = clean(experiment=experiment, status=status, limit=limit, offset=offset, parent=parent)
    return Call("GET", "/v1/jobs", params)


def recipe_body(name: str, *, variant: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A POST /v1/jobs body that runs a course recipe; every field given overrides the recipe's
    (objects merge key by key, so `hyperparameters={"epochs": 30}` keeps its other knobs)."""
    return {"recipe": name, **clean(recipe_variant=variant), **clean(**overrides)}


def add_alias(model_id: str, name: str, *, production: bool = False) -> Call:
    return Call(
        "POST", f"/v1/models/{model_id}/alias", json={"name": name, "production": production}
    )


def export(model_id: str, *, format: str = "onnx") -> Call:
    return Call("GET", f"/v1/models/{model_id}/export", {"format": format})


def predict(model_id: str, inputs: list[Any], *, top_k: int | None = None) -> Call:
    return Call("POST", f"/v1/models/{model_id}/predict", json=clean(inputs=inputs, top_k=top_k))


def predict_images(model_id: str, paths: Sequence[Path], *, top_k: int | None = None) -> Call:
    files = [("files", (path.name, path.read_bytes(), image_type(path))) for path in paths]
    return Call(
        "POST", f"/v1/models/{model_id}/predict/images", files=files, data=clean(top_k=top_k)
    )


def image_type(path: Path) -> str:
    return "image/png" if path.suffix.lower() == ".png" else "image/jpeg"


def upload_dataset(path: Path, *, name: str | None = None) -> Call:
    files = [("file", (path.name, path.read_bytes(), "application/octet-stream"))]
    return Call("POST", "/v1/datasets", files=files, data=clean(name=name))
