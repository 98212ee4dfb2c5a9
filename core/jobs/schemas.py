"""The body of the kinds that train a net (train, finetune, kfold, sweep): validated once in the
API, rebuilt as-is in the worker (what the API answers about a job is in core/jobs/views.py).

A `JobCreate` is stored as JSON on the job row; the worker rebuilds it with
`core.jobs.kind_registry.load_stored(params)` and gets the very object the API accepted (frozen,
no unknown fields, a schema version), without the registry checks it passed then. What each kind
adds to the body's rules is its card's `check_spec` (core/jobs/kinds/).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import torch
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict

import models
from core.bodies import Frozen, Int, is_stored, whole
from core.datasets import DatasetInfo, feature_count, get_dataset, is_upload_id, list_datasets
from core.datasets.info import UPLOAD_ID_PATTERN
from core.jobs.hyperparameters import MAX_SEED, Hyperparameters
from core.jobs.kind_registry import get_kind, kinds_of, list_kinds
from core.jobs.sweep_schemas import SweepSettings
from core.names import NAME_PATTERN
from core.recipes import expand_recipe, list_recipes
from core.registry.model_options import MAX_INPUT_SIZE, check_options, model_spec_variants

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
DEVICE_PATTERN = re.compile(r"^(auto|all|cpu|cuda(:[0-9]{1,2})?)$")
MAX_TIME_LIMIT_S = 366 * 86_400.0  # a sanity bound; the service's own is D2L_JOB_TIME_LIMIT_S


def _one_variant_per_arch(schema: dict[str, Any]) -> None:
    schema.pop("properties", None)
    schema.pop("required", None)
    schema.pop("additionalProperties", None)
    schema.pop("type", None)
    schema["oneOf"] = model_spec_variants()


class ModelSpec(Frozen):
    """Which network to build: a registered architecture and its options (each architecture's
    own options and input sizes, as GET /v1/architectures lists them)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, json_schema_extra=_one_variant_per_arch
    )

    arch: str = Field(description="A registered architecture (GET /v1/architectures).")
    config: dict[str, Any] = Field(default_factory=dict, description="The builder's options.")
    input_size: Annotated[int, Field(ge=1, le=MAX_INPUT_SIZE), BeforeValidator(whole)] | None = (
        Field(
            default=None,
            description="Side the inputs are resized to; default: arch's.",
        )
    )

    @field_validator("arch")
    @classmethod
    def _registered(cls, arch: str, info: ValidationInfo) -> str:
        if arch not in models.list_models() and not is_stored(info):
            raise ValueError(f"unknown arch {arch!r}; allowed: {', '.join(models.list_models())}")
        return arch

    @field_validator("config")
    @classmethod
    def _typed_and_bounded(cls, config: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "arch" not in info.data or is_stored(info):  # the arch's own error says what to fix
            return config
        return check_options(info.data["arch"], config)

    @property
    def resolved_input_size(self) -> int:
        return self.input_size or models.get_architecture(self.arch).default_input_size

    @model_validator(mode="after")
    def _config_fits_arch(self, info: ValidationInfo) -> ModelSpec:
        if not is_stored(info):
            models.check_config(self.arch, input_size=self.resolved_input_size, options=self.config)
        return self


class DatasetSpec(Frozen):
    """Which data, and how to split it (deterministic for a given seed)."""

    name: str = Field(
        description="A built-in dataset or the id of an uploaded one (GET /v1/datasets).",
        json_schema_extra={
            "anyOf": [
                {"enum": list[JsonValue](list_datasets())},
                {"pattern": UPLOAD_ID_PATTERN.pattern},
            ]
        },
    )
    val_fraction: float = Field(default=0.1, ge=0.0, le=0.5)
    test_fraction: float = Field(
        default=0.2,
        gt=0.0,
        le=0.5,
        description="Unused where the dataset has its own test split (MNIST, CIFAR-10).",
    )
    split_seed: Int = Field(default=0, ge=0, le=MAX_SEED)

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str, info: ValidationInfo) -> str:
        if is_stored(info):
            return name
        # An upload id is accepted by its shape here (there is no datasets dir to look in);
        # whether its files exist is checked at submission by core.datasets.check_available.
        if name not in list_datasets() and not is_upload_id(name):
            raise ValueError(
                f"unknown dataset {name!r}; allowed: {', '.join(list_datasets())} "
                "or the id of an uploaded dataset"
            )
        return name


OptionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,64}$")]
# A mapping whose keys all match its `patternProperties` (JSON Schema would allow any other).
ONLY_NAMED: dict[str, Any] = {"additionalProperties": False}


class Candidate(Frozen):
    """One configuration to compare in a k-fold job: overrides of the job's model config and
    hyperparameters (e.g. a weight decay, or hidden sizes for model capacity)."""

    label: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.=+-]+$")
    config: dict[OptionName, Any] = Field(
        default_factory=dict, description="Merged into model.config.", json_schema_extra=ONLY_NAMED
    )
    hyperparameters: dict[OptionName, Any] = Field(
        default_factory=dict,
        description="Merged into the job's hyperparameters.",
        json_schema_extra=ONLY_NAMED,
    )


class KFold(Frozen):
    """k-fold cross-validation on the train split (ch. 3.6 Generalization, model selection)."""

    k: Int = Field(default=5, ge=2, le=20)
    candidates: list[Candidate] = Field(default_factory=list, max_length=20)
    select_by: Literal["val_acc", "val_loss"] = "val_acc"

    @field_validator("candidates")
    @classmethod
    def _unique_labels(cls, candidates: list[Candidate]) -> list[Candidate]:
        labels = [candidate.label for candidate in candidates]
        if len(set(labels)) != len(labels):
            raise ValueError(f"candidate labels must be unique, got {labels}")
        return candidates


EXACTLY_ONE_SOURCE: JsonDict = {
    "oneOf": [
        {
            "required": ["job_id"],
            "properties": {"job_id": {"type": "string"}, "checkpoint_id": {"type": "null"}},
        },
        {
            "required": ["checkpoint_id"],
            "properties": {"checkpoint_id": {"type": "string"}, "job_id": {"type": "null"}},
        },
    ]
}


class FineTuneSource(Frozen):
    """Where the starting weights come from: a succeeded job's model, or an uploaded state_dict
    (exactly one of them)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, json_schema_extra=EXACTLY_ONE_SOURCE
    )

    job_id: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="A succeeded train/finetune job."
    )
    checkpoint_id: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="From POST /v1/checkpoints."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> FineTuneSource:
        if (self.job_id is None) == (self.checkpoint_id is None):
            raise ValueError("give exactly one of job_id and checkpoint_id")
        return self


FreezePrefixes = Annotated[
    list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.]{1,200}$")]],
    Field(max_length=1000),
]


class FineTune(Frozen):
    """Fine-tuning (ch. 14.2): start from trained weights, new head, frozen or slower backbone."""

    source: FineTuneSource
    freeze: FreezePrefixes | Literal["features", "all_but_head"] | None = Field(
        default=None,
        description="Parameter-name prefixes to freeze, 'features' (every conv/norm layer) "
        "or 'all_but_head'.",
    )
    backbone_lr_mult: float = Field(
        default=0.1, ge=0.0, le=1.0, description="Backbone lr = lr x this; the head gets lr."
    )


class JobCreate(Frozen):
    """POST /v1/jobs: a training job, or a k-fold model selection (`kind: "kfold"`)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "train",
                    "experiment": "lenet-digits",
                    "model": {"arch": "lenet"},
                    "dataset": {"name": "digits"},
                    "hyperparameters": {"epochs": 30, "batch_size": 16, "lr": 0.9},
                }
            ]
        },
    )

    schema_version: Literal[1] = 1
    recipe: Annotated[str, Field(json_schema_extra={"enum": list_recipes()})] | None = Field(
        default=None,
        description="A course experiment (GET /v1/recipes) whose job this is; every other "
        "field given overrides the recipe's.",
    )
    recipe_variant: Annotated[str, Field(pattern=NAME_PATTERN)] | None = Field(
        default=None,
        description="The recipe's variant, e.g. 'digits' where the book's data is absent.",
    )
    kind: str = Field(
        default="train",
        description="What the job does with the net (each kind is a card: core/jobs/kinds/).",
        json_schema_extra=lambda schema: schema.update(enum=list[JsonValue](kinds_of(JobCreate))),
    )
    experiment: str = Field(default="default", pattern=NAME_PATTERN)
    model: ModelSpec
    dataset: DatasetSpec
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    device: str = Field(
        default="auto",
        pattern=DEVICE_PATTERN.pattern,
        description=(
            "auto (the worker's first GPU, else CPU), all (every GPU of the worker, "
            "DistributedDataParallel; CPU when it has none), cpu, cuda or cuda:N."
        ),
    )

    kfold: KFold | None = Field(default=None, description="Only for kind 'kfold'.")
    finetune: FineTune | None = Field(default=None, description="Only for kind 'finetune'.")
    sweep: SweepSettings | None = Field(
        default=None,
        description="Only for kind 'sweep': each trial is this body (a train job, or a "
        "finetune job when it has finetune settings) with the trial's sampled values.",
    )
    priority: Literal["high", "normal", "low"] = Field(
        default="normal",
        description="With Redis, waiting jobs start in this order (the embedded broker keeps "
        "arrival order).",
    )
    time_limit_s: float | None = Field(
        default=None,
        ge=1.0,
        le=MAX_TIME_LIMIT_S,
        description="Stop training after this many seconds (per attempt), keeping the "
        "checkpoints; the job then fails saying so. Default and upper bound: the service's "
        "D2L_JOB_TIME_LIMIT_S.",
    )

    @field_validator("kind")
    @classmethod
    def _a_kind_of_this_body(cls, kind: str) -> str:
        if kind not in kinds_of(JobCreate):
            raise ValueError(f"unknown kind {kind!r}; allowed: {', '.join(list_kinds())}")
        return kind

    @model_validator(mode="before")
    @classmethod
    def _expand_recipe(cls, data: Any, info: ValidationInfo) -> Any:
        # A recipe is a preset body: expanded here, it is validated like any other job. A stored
        # body holds the expansion already.
        if isinstance(data, dict) and not is_stored(info):
            return expand_recipe(data)
        return data

    @model_validator(mode="after")
    def _rules_of_its_kind(self, info: ValidationInfo) -> JobCreate:
        if not is_stored(info):
            get_kind(self.kind).check_spec(self)
        return self

    @model_validator(mode="after")
    def _dataset_fits_model(self, info: ValidationInfo) -> JobCreate:
        # An uploaded dataset's shape is known only where its files are: the API checks it
        # with `fits_dataset` once it has found them (and the worker loads it from them).
        if not is_upload_id(self.dataset.name) and not is_stored(info):
            self.fits_dataset(get_dataset(self.dataset.name))
        return self

    def input_size_for(self, info: DatasetInfo) -> int:
        """The net's input size on `info`: how many features of a row it takes (all unless
        `model.input_size` says), or the side of the square image it sees."""
        if info.tabular:
            return feature_count(info, self.model.input_size)
        return self.model.resolved_input_size

    def net_shape(self, info: DatasetInfo, *, input_size: int | None = None) -> models.NetShape:
        """The shape of the net this job trains on data like `info` (at `input_size`, by default
        its own)."""
        return models.NetShape(
            in_channels=info.in_channels,
            num_classes=info.num_classes,
            input_size=input_size or self.input_size_for(info),
        )

    def fits_dataset(self, info: DatasetInfo) -> None:
        """Refuse (ValueError) a model that cannot be built for this dataset's shape or task.

        A net serves the tasks its registry entry names (`Architecture.serves`): the MLP both,
        as the course's linear regression when `hidden_sizes=[]` and `flat_features=true`."""
        arch = models.get_architecture(self.model.arch)
        if not arch.serves(info.task):
            raise ValueError(
                f"{arch.name} is a {arch.task} model; {info.name} is a {info.task} dataset"
            )
        kind = get_kind(self.kind)
        if info.task not in kind.dataset_tasks:
            takers = kinds_of(JobCreate, lambda card: info.task in card.dataset_tasks)
            raise ValueError(
                f"kind {self.kind!r} is not available for {info.task} datasets; use kind "
                + " or ".join(map(repr, takers))
            )
        if info.task == "regression":
            self._fits_regression()
        if self.hyperparameters.dropout is not None and "dropout" not in arch.options:
            raise ValueError(
                f"{arch.name} has no dropout to override; remove hyperparameters.dropout"
            )
        input_size = self.input_size_for(info)
        if info.tabular:
            if "flat_features" not in arch.options and arch.task != "regression":
                raise ValueError(
                    f"{arch.name} takes images; {info.name} holds rows of {info.raw_shape[0]} "
                    'features: use arch "mlp" with config "flat_features": true'
                )
            if self.hyperparameters.augmentation.enabled:
                raise ValueError(
                    f"augmentation transforms images; {info.name} holds rows of features: "
                    "remove hyperparameters.augmentation"
                )
            if "flat_features" in arch.options and not self.model.config.get("flat_features"):
                raise ValueError(
                    f"{info.name} holds rows of features: {arch.name} needs config "
                    '"flat_features": true'
                )
            if arch.task == "regression" and input_size != 1:
                raise ValueError(
                    f"{arch.name} pools over one scalar feature; {info.name} has "
                    f"{info.raw_shape[0]} features"
                )
        # Building on the meta device costs no memory and catches option values the net refuses.
        with torch.device("meta"):
            net = models.build_net(self.model.arch, self.model_options, self.net_shape(info))
        if self.finetune is not None and isinstance(self.finetune.freeze, list):
            names = [name for name, _ in net.named_parameters()]
            for prefix in self.finetune.freeze:
                if not any(name.startswith(prefix) for name in names):
                    raise ValueError(
                        f"freeze prefix {prefix!r} matches no parameter of {arch.name}; "
                        f"its parameters are: {', '.join(names[:40])}"
                    )

    def _fits_regression(self) -> None:
        """What the regression engine (worker/regression.py) does not do, refused up front."""
        hp = self.hyperparameters
        if hp.augmentation.enabled or hp.label_smoothing:
            raise ValueError(
                "augmentation and label_smoothing apply to image classification; remove them"
            )
        if hp.precision != "fp32" or hp.channels_last:
            raise ValueError("regression jobs train in fp32 without channels_last")

    @property
    def model_options(self) -> dict[str, Any]:
        """The builder's options: the model config, with the dropout override applied."""
        options = dict(self.model.config)
        if self.hyperparameters.dropout is not None:
            options["dropout"] = self.hyperparameters.dropout
        return options

    @property
    def wants_gpu(self) -> bool:
        """Goes to the gpu queue: a named GPU, or all of a worker's GPUs."""
        return self.device == "all" or self.device.startswith("cuda")
