"""What the kinds that train a net (train, finetune, kfold, sweep) share: one body (`JobCreate`),
the rule that each settings block goes with its kind, and the server's checks at submission."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy.orm import Session

from core import workers
from core.datasets import check_available, get_dataset, is_upload_id
from core.errors import InvalidInputError
from core.jobs.admission import check_fits_a_worker
from core.jobs.finetune import check_compatible
from core.jobs.kind_registry import kinds_of
from core.jobs.kinds.card import KindCard, RequestSummary, check_time_limit
from core.jobs.memory_estimate import data_footprint
from core.jobs.model_size import check_model_size
from core.jobs.references import BASE_SOURCE, ResolvedSource, resolve_sources
from core.jobs.schemas import JobCreate
from core.recipes import variant_offer
from core.settings import Settings

if TYPE_CHECKING:
    import torch

#: The body's optional settings blocks, each taken by the kinds whose card lists it in `takes`.
SETTINGS_BLOCKS = ("kfold", "finetune", "sweep")


class TrainingKind(KindCard):
    """A kind whose body is a `JobCreate` and whose success is a trained model."""

    spec_model = JobCreate
    engine: ClassVar[str | None] = "train"
    #: The settings blocks of the body it takes, and those it cannot go without.
    takes: ClassVar[frozenset[str]] = frozenset()
    needs: ClassVar[frozenset[str]] = frozenset()

    def check_spec(self, spec: JobCreate) -> None:
        for block in SETTINGS_BLOCKS:
            given = getattr(spec, block) is not None
            if given and block not in self.takes:
                takers = kinds_of(JobCreate, taking(block))
                raise ValueError(
                    f"{block} settings need kind {' or '.join(map(repr, takers))}; "
                    f"kind {self.name!r} takes none"
                )
            if not given and block in self.needs:
                raise ValueError(f"kind {self.name!r} needs {block} settings")

    def check_submission(self, session: Session, spec: JobCreate, settings: Settings) -> JobCreate:
        """The dataset's files (an upload the caller's own, and fitting the model), the net's
        size, a live worker's memory, and every fine-tune source the job may train from."""
        check_time_limit(spec, settings)
        sources = self.resolve_references(session, spec)  # not another owner's data or weights
        root = settings.datasets_dir
        try:
            check_available(spec.dataset.name, root, download=settings.download_datasets)
        except InvalidInputError as error:  # a recipe offers its variant on data that are here
            offer = variant_offer(spec.recipe, spec.recipe_variant)
            raise InvalidInputError(f"{error}{offer}") from None
        info = get_dataset(spec.dataset.name, root=root)
        if is_upload_id(spec.dataset.name):
            try:
                spec.fits_dataset(info)
            except ValueError as error:
                raise InvalidInputError(f"model: {error}") from None
        check_model_size(
            self.trained_specs(spec), info, max_parameters=settings.max_model_parameters
        )
        footprint = data_footprint(info.raw_bytes(root), settings)
        live = workers.live_workers(session, within_s=settings.heartbeat_timeout_s)
        check_fits_a_worker(spec, info, live, data=footprint)
        for source in sources:
            try:
                check_compatible(source.spec, source.weights, in_channels=info.in_channels)
            except InvalidInputError as error:
                if source.where == BASE_SOURCE:
                    raise
                raise InvalidInputError(f"{source.where}: {error}") from None
        return spec

    def planned_epochs(self, spec: JobCreate) -> int:
        """Non-parametric attention pooling has nothing to learn: it evaluates once (one
        epoch), whatever the kind; other nets train `training_epochs`."""
        if spec.model.arch == "nadaraya_watson" and not spec.model_options.get("parametric"):
            return 1
        return self.training_epochs(spec)

    def training_epochs(self, spec: JobCreate) -> int:
        """Epochs the job trains in all."""
        return spec.hyperparameters.epochs

    def summary(self, spec: JobCreate) -> RequestSummary:
        return RequestSummary(
            arch=spec.model.arch,
            config=dict(spec.model.config),
            dataset=spec.dataset.name,
            hyperparameters=spec.hyperparameters.model_dump(mode="json"),
            recipe=spec.recipe,
        )

    def weight_sources(self, spec: JobCreate) -> list[tuple[str, JobCreate]]:
        """(where, spec) of each job or trial that starts from stored weights."""
        return [(BASE_SOURCE, spec)] if spec.finetune is not None else []

    def resolve_references(self, session: Session, spec: JobCreate) -> list[ResolvedSource]:
        return resolve_sources(session, spec.dataset.name, self.weight_sources(spec))

    def out_of_memory_advice(self, spec: JobCreate, device: torch.device) -> str:
        hp = spec.hyperparameters
        hints = [f"hyperparameters.batch_size {max(1, hp.batch_size // 2)}"]
        if hp.precision == "fp32":
            hints.append('precision "bf16"')
        hints.append("a smaller model.input_size")
        return (
            f"GPU out of memory on {device} with batch_size {hp.batch_size}: "
            f"try {', or '.join(hints)}"
        )


def taking(block: str) -> Callable[[KindCard], bool]:
    """Whether a card takes the settings block `block`."""
    return lambda card: block in getattr(card, "takes", ())
