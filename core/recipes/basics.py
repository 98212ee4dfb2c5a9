"""The course's experiments before the CNNs (ch. 3, 5), model selection, fine-tuning (ch. 14.2)
and attention pooling (ch. 11.2) as recipes, with the numbers COURSE.md records.

The synthetic recipes (weight decay, polynomial fit, Nadaraya-Watson) run exactly as the book on
every machine: their data are generated with the book's sizes. Losses are the service's mean
squared error where the book's from-scratch `squared_loss` halves it (noted on each recipe).
"""

from __future__ import annotations

from typing import Any

from core.recipes.cnn import FASHION, FASHION_PREP, LINEAR, NO_DIAGNOSTICS, digits, sgd
from core.recipes.model import Check, Recipe, Variant

POLYNOMIAL = {**LINEAR, "bias": False}  # ch. 3.6's model: its constant term is x^0's weight

MLP_INIT = "W ~ N(0, 0.01^2), zero bias (nn.init.normal_(std=0.01))"
SYNTHETIC_PREP = "none: the generated features are used as they are"
WHOLE_TRAIN = {"val_fraction": 0.0}  # the book trains on every training example
HALVED_LOSS = "The book's from-scratch squared_loss is (y_hat - y)^2 / 2; ours is the plain MSE."


def mlp_recipe(
    name: str,
    *,
    title: str,
    config: dict[str, Any],
    lr: float,
    book: tuple[float, float, float],
    printed: str,
    test_range: tuple[float, float],
) -> Recipe:
    """A ch. 5 MLP on Fashion-MNIST with the book's N(0, 0.01) init."""
    return Recipe(
        name=name,
        title=title,
        chapter="5.6" if "dropout" in config else "5.2",
        spec={
            "experiment": name,
            "model": {"arch": "mlp", "config": config},
            "dataset": FASHION,
            "hyperparameters": {
                **sgd(lr, 10, 256, init="normal", init_std=0.01),
                **NO_DIAGNOSTICS,
            },
        },
        book={"train_loss": book[0], "train_acc": book[1], "test_acc": book[2]},
        book_printed=printed,
        book_dataset="fashion_mnist",
        preprocessing=FASHION_PREP.format(resize=""),
        init=MLP_INIT,
        checks=(Check("test_acc", low=test_range[0], high=test_range[1], why="book +- 0.03"),),
        variants=(digits(0.1, input_size=8),),
    )


DROPOUT_CONFIG = {"hidden_sizes": [256, 256], "dropout": [0.2, 0.5]}
DROPOUT_PRINTED = "loss 0.344, train acc 0.875, test acc 0.844 (E: 0.361/0.868/0.845)"

MLP_RECIPES = (
    mlp_recipe(
        "mlp",
        title="MLP 784-256-10 (ReLU)",
        config={"hidden_sizes": [256], "activation": "relu"},
        lr=0.1,
        book=(0.385, 0.863, 0.823),
        printed="loss ~0.385, train acc 0.863, test acc 0.823 (E: 0.384/0.864/0.837)",
        test_range=(0.79, 0.87),
    ),
    mlp_recipe(
        "dropout",
        title="MLP 784-256-256-10 with nn.Dropout 0.2 then 0.5",
        config={**DROPOUT_CONFIG, "dropout_impl": "torch"},
        lr=0.5,
        book=(0.344, 0.875, 0.844),
        printed=DROPOUT_PRINTED,
        test_range=(0.81, 0.88),
    ),
    mlp_recipe(
        "dropout-scratch",
        title="MLP 784-256-256-10 with the from-scratch dropout 0.2 then 0.5",
        config={**DROPOUT_CONFIG, "dropout_impl": "scratch"},
        lr=0.5,
        book=(0.344, 0.875, 0.844),
        printed=DROPOUT_PRINTED,
        test_range=(0.81, 0.88),
    ),
)


def weight_decay(lambd: float, book: dict[str, Any], checks: tuple[Check, ...]) -> Recipe:
    """ch. 3.7: a linear model on 200 features and 20 examples, with L2 penalty `lambd`."""
    return Recipe(
        name=f"weight-decay-{lambd:g}",
        title=f"Weight decay, lambda {lambd:g}",
        chapter="3.7",
        spec={
            "experiment": "weight-decay",
            "model": {"arch": "mlp", "config": LINEAR},
            "dataset": {"name": "linear_highdim", **WHOLE_TRAIN},
            "hyperparameters": sgd(
                0.003, 100, 5, weight_decay=lambd, init="normal", init_std=1.0, **NO_DIAGNOSTICS
            ),
        },
        book=book,
        book_printed=(
            "norm of w: 12.96 (lambda 0) vs 0.356 (lambda 3) (E: 13.52 vs 0.350); "
            "train/test loss lambda 0: 5.3e-6/98.1, lambda 3: 7.1e-4/0.080"
        ),
        book_dataset="linear_highdim",
        preprocessing=SYNTHETIC_PREP,
        init="w ~ N(0, 1), b = 0",
        checks=checks,
        notes=(HALVED_LOSS,),
    )


WEIGHT_DECAY_RECIPES = (
    weight_decay(
        0,
        {"w_norm": 12.96, "train_loss": 5.3e-6, "test_loss": 98.1},
        (
            Check("w_norm", low=5.0, why="unregularised: the norm stays large (book 12.96)"),
            Check("train_loss", high=1e-3, why="it fits its 20 examples (book 5.3e-6)"),
            Check("test_loss", low=1.0, why="and generalises badly (book 98.1)"),
        ),
    ),
    weight_decay(
        3,
        {"w_norm": 0.356, "train_loss": 7.1e-4, "test_loss": 0.080},
        (
            Check("w_norm", high=1.0, why="the penalty shrinks w (book 0.356)"),
            Check("test_loss", high=1.0, why="and the test loss falls (book 0.080)"),
        ),
    ),
)


def polynomial(
    name: str, features: int, epochs: int, book: dict[str, Any], checks: tuple[Check, ...]
) -> Recipe:
    """ch. 3.6: the cubic fitted with the first `features` features x^i / i!."""
    return Recipe(
        name=name,
        title=f"Polynomial fit with {features} features ({name.removeprefix('poly-')})",
        chapter="3.6",
        spec={
            "experiment": "polynomial-fit",
            "model": {"arch": "mlp", "config": POLYNOMIAL, "input_size": features},
            "dataset": {"name": "poly_regression", **WHOLE_TRAIN},
            "hyperparameters": sgd(0.01, epochs, 10, init="default", **NO_DIAGNOSTICS),
        },
        book=book,
        book_printed=(
            "weights: normal [5.010, 1.235, -3.423, 5.503]; underfit [3.405, 3.994]; "
            "train/test MSE normal ~0.011/0.011, underfit ~8.4/15.6"
        ),
        book_dataset="poly_regression",
        preprocessing=SYNTHETIC_PREP,
        init="PyTorch's default Linear init",
        checks=checks,
        notes=(
            "As in the book, the linear layer has no bias (`bias: false`): feature 0 is the "
            "constant x^0 = 1, and its weight w[0] is the constant term.",
        ),
    )


POLY_RECIPES = (
    polynomial(
        "poly-underfit",
        2,
        400,
        {"weights": [3.405, 3.994], "train_loss": 8.4, "test_loss": 15.6},
        (
            Check("weights", target=[3.405, 3.994], tolerance=0.5, why="book's line, +- sampling"),
            Check("train_loss", low=1.0, why="a line cannot fit the cubic (book ~8.4)"),
            Check("test_loss", low=1.0, why="book ~15.6"),
        ),
    ),
    polynomial(
        "poly-normal",
        4,
        400,
        {"weights": [5.010, 1.235, -3.423, 5.503], "train_loss": 0.011, "test_loss": 0.011},
        (
            Check("weights", target=[5.0, 1.2, -3.4, 5.6], tolerance=0.2, why="the true w"),
            Check("train_loss", high=0.05, why="noise variance 0.01 (book ~0.011)"),
            Check("test_loss", high=0.05, why="book ~0.011"),
        ),
    ),
    polynomial(
        "poly-overfit",
        20,
        1500,
        {},
        (
            Check(
                "train_loss",
                high=0.05,
                why="20 features fit the training data at least as the cubic",
            ),
        ),
    ),
)


# The book's own code, rerun on three other draws of its (unseeded) data, ends at 16-20.
NW_RANGE_WHY = "book's last epoch 12.4; its code on other draws of the data: 16-20"


def nadaraya_watson(parametric: bool) -> Recipe:
    """ch. 11.2: attention pooling of 50 noisy samples of 2 sin x + x^0.8."""
    hp = sgd(0.5, 5, 50) if parametric else {"epochs": 1}
    return Recipe(
        name="nadaraya-watson-parametric" if parametric else "nadaraya-watson",
        title="Nadaraya-Watson attention pooling, "
        + ("one learned width w" if parametric else "Gaussian kernel"),
        chapter="11.2",
        spec={
            "experiment": "nadaraya-watson",
            "model": {"arch": "nadaraya_watson", "config": {"parametric": parametric}},
            "dataset": {"name": "kernel_regression", **WHOLE_TRAIN},
            "hyperparameters": {**hp, **NO_DIAGNOSTICS},
        },
        book={"train_loss_curve": [48, 16, 13.5, 12.8, 12.4], "train_loss": 12.4}
        if parametric
        else {},
        book_printed="summed loss per epoch ~48 -> 16 -> 13.5 -> 12.8 -> 12.4"
        if parametric
        else "the prediction plot and the attention heatmap only (no number)",
        book_dataset="kernel_regression",
        preprocessing=SYNTHETIC_PREP,
        init="w ~ U(0, 1)" if parametric else "no parameters",
        checks=(Check("train_loss", low=8.0, high=30.0, why=NW_RANGE_WHY),)
        if parametric
        else (Check("test_mse", high=0.5, why="the kernel estimate follows the curve"),),
        notes=("Summed squared error, leave-one-out keys while training, as the book.",),
    )


KFOLD = Recipe(
    name="kfold",
    title="k-fold cross-validation for model selection",
    chapter="5.7",
    spec={
        "experiment": "kfold",
        "kind": "kfold",
        "model": {"arch": "mlp", "config": {"hidden_sizes": []}},
        "hyperparameters": {
            "optimizer": "adam",
            "lr": 5.0,
            "weight_decay": 0.0,
            "batch_size": 64,
            "epochs": 100,
            **NO_DIAGNOSTICS,
        },
        "kfold": {"k": 5},
    },
    book={"train_log_rmse": 0.165, "val_log_rmse": 0.170},
    book_printed="5-fold average train log rmse 0.165, valid log rmse 0.170",
    book_dataset="kaggle_house_pred (not built in)",
    preprocessing="numeric features standardised, NaN -> 0, categoricals one-hot (331 features)",
    init="PyTorch's default Linear init",
    requires=("dataset",),
    variants=(
        Variant(
            name="digits",
            description="softmax regression on digits, choosing the weight decay by 5-fold CV",
            overrides={
                "model": {"input_size": 8},
                "dataset": {"name": "digits", "val_fraction": 0.1},
                "hyperparameters": {"lr": 0.01, "epochs": 10, "batch_size": 64},
                "kfold": {
                    "candidates": [
                        {"label": "wd0", "hyperparameters": {"weight_decay": 0.0}},
                        {"label": "wd1e-3", "hyperparameters": {"weight_decay": 0.001}},
                    ]
                },
            },
            checks=(Check("test_acc", low=0.9, why="the selected model's test accuracy"),),
        ),
    ),
    notes=(
        "The book's data (Kaggle house prices) and its log-RMSE regression are not built in; "
        "its numbers are shown for reference. Run the digits variant, or name a dataset.",
    ),
)


def finetune(scratch: bool) -> Recipe:
    """ch. 14.2: ResNet-18 on hotdog/not-hotdog, fine-tuned from ImageNet weights or scratch."""
    hp = {
        **sgd(5e-4, 5, 128, weight_decay=1e-3),
        "augmentation": {"random_resized_crop_scale": 0.08, "horizontal_flip": True},
        **NO_DIAGNOSTICS,
    }
    spec: dict[str, Any] = {
        "experiment": "finetune",
        "model": {"arch": "resnet18", "input_size": 224},
        "hyperparameters": hp,
    }
    if not scratch:
        spec |= {"kind": "finetune", "finetune": {"backbone_lr_mult": 0.1}}
    digits_hp = {
        "lr": 0.01,
        "epochs": 5,
        "batch_size": 16,
        "augmentation": {"random_resized_crop_scale": None, "horizontal_flip": False},
    }
    return Recipe(
        name="finetune-scratch" if scratch else "finetune",
        title="ResNet-18 " + ("from scratch (the baseline)" if scratch else "fine-tuned"),
        chapter="14.2",
        spec=spec,
        book={"train_loss": 0.374, "train_acc": 0.839, "test_acc": 0.843}
        if scratch
        else {"train_loss": 0.220, "train_acc": 0.915, "test_acc": 0.939},
        book_printed="fine-tuned 0.220/0.915/0.939; scratch (lr 5e-4) 0.374/0.839/0.843",
        book_dataset="hotdog (upload it as an ImageFolder archive: POST /v1/datasets)",
        preprocessing="RandomResizedCrop(224) + flip, ImageNet mean/std (ours: the train split's)",
        init="new head: xavier_uniform_" if not scratch else "PyTorch's default",
        requires=("dataset",) if scratch else ("dataset", "finetune.source"),
        variants=(
            Variant(
                name="digits",
                description="ResNet-18 at 16x16 on digits, 5 epochs at a small learning rate",
                overrides={
                    "model": {"input_size": 16},
                    "dataset": {"name": "digits", "val_fraction": 0.1},
                    "hyperparameters": digits_hp,
                },
            ),
        ),
        notes=(
            "lr is the new head's; the pretrained backbone learns at lr x 0.1, as the book's "
            "param groups (backbone 5e-5, head 5e-4)."
            if not scratch
            else "Every layer learns at 5e-4, as the book's scratch baseline.",
            "No ImageNet weights ship with the service: give finetune.source (a job's model "
            "or an uploaded state_dict)."
            if not scratch
            else "Compare with recipe 'finetune'.",
        ),
    )


OTHER_RECIPES = (
    KFOLD,
    finetune(scratch=False),
    finetune(scratch=True),
    nadaraya_watson(parametric=False),
    nadaraya_watson(parametric=True),
)
