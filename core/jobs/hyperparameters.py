"""The training knobs of a job, validated once in the API (ranges and defaults from the course)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.bodies import Frozen, Int
from models.init import INIT_SCHEMES

# The schemes models/init.py implements, as a Literal so OpenAPI lists them.
InitScheme = Literal[INIT_SCHEMES]  # type: ignore[valid-type]
Optimizer = Literal["sgd", "adam", "adamw"]
Precision = Literal["fp32", "bf16", "fp16"]


# Seeds: within every RNG the service seeds (numpy's legacy seeds are 32-bit), with room to add
# a rank or a trial number.
MAX_SEED = 2**31 - 1


class LRSchedule(Frozen):
    """How the learning rate moves during training, stepped once per optimiser step."""

    name: Literal["constant", "step", "cosine", "onecycle"] = "constant"
    warmup_epochs: float = Field(
        default=0.0, ge=0.0, le=100.0, description="Linear warm-up from ~0 to lr (not onecycle)."
    )
    step_size: Int = Field(default=10, ge=1, le=10_000, description="step: epochs between decays.")
    gamma: float = Field(default=0.1, gt=0.0, le=1.0, description="step: decay factor.")
    min_lr_ratio: float = Field(default=0.0, ge=0.0, le=1.0, description="cosine: floor / lr.")
    pct_start: float = Field(default=0.3, gt=0.0, lt=1.0, description="onecycle: rising part.")


class EarlyStopping(Frozen):
    """Stop when the validation metric has not improved for `patience` epochs."""

    metric: Literal["val_loss", "val_acc"] = "val_loss"
    patience: Int = Field(default=5, ge=1, le=1000)
    min_delta: float = Field(default=0.0, ge=0.0, le=1e6)


class Augmentation(Frozen):
    """Random image augmentation of each training example (ch. 14.1), torchvision transforms v2."""

    random_crop_padding: Int = Field(
        default=0, ge=0, le=64, description="Pad by this many pixels, then crop back at random."
    )
    horizontal_flip: bool = False
    brightness: float = Field(default=0.0, ge=0.0, le=1.0, description="ColorJitter brightness.")
    contrast: float = Field(default=0.0, ge=0.0, le=1.0, description="ColorJitter contrast.")
    random_resized_crop_scale: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="RandomResizedCrop with scale (this, 1)."
    )

    @property
    def enabled(self) -> bool:
        return bool(
            self.random_crop_padding
            or self.horizontal_flip
            or self.brightness
            or self.contrast
            or self.random_resized_crop_scale
        )


class Hyperparameters(Frozen):
    """Training knobs. Defaults are the course's LeNet recipe (SGD, lr 0.9, Xavier init) with the
    epochs and batch size sized for the bundled digits: its 1,258 training images at the book's
    batch 256 give 5 steps an epoch, too few for a sigmoid LeNet to leave its plateau; 30 epochs
    of batch 16 reach 96-97% test accuracy for every seed we tried."""

    # Up to 10,000: the course's overfitting polynomial (ch. 3.6) alone trains 1,500 epochs.
    epochs: Int = Field(default=30, ge=1, le=10_000)
    batch_size: Int = Field(default=16, ge=1, le=8192)
    lr: float = Field(default=0.9, gt=0.0, le=1e6)
    optimizer: Optimizer = "sgd"
    momentum: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="sgd only; > 0 is SGD with momentum."
    )
    weight_decay: float = Field(
        default=0.0, ge=0.0, le=10.0, description="L2 penalty lambda (ch. 3.7); decoupled in adamw."
    )
    dropout: float | None = Field(
        default=None, ge=0.0, lt=1.0, description="Overrides the arch's dropout option."
    )
    label_smoothing: float = Field(default=0.0, ge=0.0, le=0.5)
    grad_clip_norm: float | None = Field(
        default=None, gt=0.0, le=1e6, description="Clip the global gradient norm to this (ch. 9.5)."
    )
    lr_schedule: LRSchedule = Field(default_factory=LRSchedule)
    augmentation: Augmentation = Field(default_factory=Augmentation)
    early_stopping: EarlyStopping | None = None
    init: InitScheme = Field(
        default="xavier_uniform", description="Weight init of Linear/Conv layers (ch. 5.4)."
    )
    init_std: float = Field(default=0.01, gt=0.0, le=10.0, description="std of init 'normal'.")
    init_value: float = Field(default=0.0, ge=-10.0, le=10.0, description="init 'constant' value.")
    init_bias: Literal["zero", "default"] = Field(
        default="zero",
        description="Biases under an init scheme: zero, or PyTorch's default (uniform within "
        "1/sqrt(fan_in)), which the book's train_ch6 keeps when it applies Xavier to weights.",
    )
    precision: Precision = Field(
        default="fp32", description="bf16/fp16 autocast; fp16 needs a GPU (with loss scaling)."
    )
    channels_last: bool = False
    compile: bool = Field(default=False, description="torch.compile the net (slow first epoch).")
    layer_diagnostics: bool = Field(
        default=True, description="Record per-layer gradient and weight norms every epoch."
    )
    seed: Int = Field(
        default=0, ge=0, le=MAX_SEED, description="Seeds init and data order: same seed, same run."
    )
    keep_checkpoints: Int = Field(default=3, ge=1, le=1000, description="Newest checkpoints kept.")

    @model_validator(mode="after")
    def _momentum_is_for_sgd(self) -> Hyperparameters:
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"momentum applies to optimizer 'sgd', not {self.optimizer!r}")
        return self
