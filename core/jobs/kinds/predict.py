"""`kind: "predict"`: run a trained model over a whole dataset split on a worker (for batches too
big for one request); its result is a file of predictions, not a model."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.datasets import check_available, get_dataset
from core.errors import InvalidInputError, NotFoundError
from core.jobs.kind_registry import register_kind
from core.jobs.kinds.card import KindCard, RequestSummary, check_time_limit
from core.jobs.predict_jobs import PredictJobCreate
from core.jobs.references import ResolvedSource, check_model_reference
from core.registry.queries import resolve_model
from core.settings import Settings


@register_kind
class Predict(KindCard):
    name = "predict"
    spec_model = PredictJobCreate
    engine = "predict"
    makes_model = False
    artifact = "predictions"
    dataset_tasks = frozenset({"classification", "regression"})

    def check_submission(
        self, session: Session, spec: PredictJobCreate, settings: Settings
    ) -> PredictJobCreate:
        """The model exists and fits the dataset (whose files are here); returns the spec with
        the model's id filled in, so an alias that moves later does not change what it uses."""
        check_time_limit(spec, settings)
        try:
            model = resolve_model(session, ref=spec.model)
        except NotFoundError as error:
            raise InvalidInputError(f"model: {error}") from None
        self.resolve_references(session, spec)  # the dataset: not another owner's upload
        check_available(
            spec.dataset.name, settings.datasets_dir, download=settings.download_datasets
        )
        info = get_dataset(spec.dataset.name, root=settings.datasets_dir)
        trained = model.job.result or {}
        task = str(trained.get("task", "classification"))
        if task != info.task:
            raise InvalidInputError(
                f"dataset: model {model.id} is a {task} model; {info.name} is a {info.task} dataset"
            )
        raw_shape = list((trained.get("preprocessing") or {}).get("raw_shape", []))
        if raw_shape != list(info.raw_shape):
            raise InvalidInputError(
                f"dataset: model {model.id} takes raw samples of shape {raw_shape}; "
                f"{info.name} stores samples of shape {list(info.raw_shape)}"
            )
        return spec.model_copy(update={"model_id": model.id})

    def resolve_references(self, session: Session, spec: PredictJobCreate) -> list[ResolvedSource]:
        check_model_reference(
            session, dataset=spec.dataset.name, model=spec.model, model_id=spec.model_id
        )
        return []

    def summary(self, spec: PredictJobCreate) -> RequestSummary:
        return RequestSummary(
            arch=f"model {spec.model}", config={}, dataset=spec.dataset.name, hyperparameters={}
        )

    def planned_epochs(self, spec: PredictJobCreate) -> int:
        """Progress reads 0 of 1 until the predictions are written, then 1 of 1."""
        return 1
