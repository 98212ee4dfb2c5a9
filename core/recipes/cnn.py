"""The course's convolutional experiments (ch. 7-8) as recipes, with the numbers COURSE.md records.

Every spec is a partial `JobCreate` body. Book runs train on Fashion-MNIST's whole training set
(`val_fraction` 0) and test on its test set, as `train_ch6` does; their `digits` variants are
sized for the 1,797 bundled 8x8 digits (small inputs, batch 16, 30 epochs) and must reach 95%
test accuracy. Values shared by many recipes are named once below.
"""

from __future__ import annotations

from typing import Any

from core.recipes.model import Check, Recipe, Variant

LINEAR = {"hidden_sizes": [], "flat_features": True}
FASHION = {"name": "fashion_mnist", "val_fraction": 0.0}
# ch. 6's train_ch6: Xavier on Linear/Conv weights, plain SGD, mean cross-entropy.
CH6_INIT = "xavier_uniform_ on every Linear/Conv2d weight (train_ch6)"
FASHION_PREP = (
    "ToTensor() (scale to [0, 1]){resize}; the service also normalises by the train mean/std"
)
DIGITS_ACC = (Check("test_acc", low=0.95, why="digits variant: at least 95% test accuracy"),)
NO_DIAGNOSTICS = {"layer_diagnostics": False}  # the book records none; they slow small nets


def sgd(lr: float, epochs: int, batch_size: int, **more: Any) -> dict[str, Any]:
    """The book's plain minibatch SGD (no momentum, no weight decay) and its schedule."""
    return {"optimizer": "sgd", "lr": lr, "epochs": epochs, "batch_size": batch_size, **more}


def digits(
    lr: float, *, input_size: int | None = None, epochs: int = 30, batch_size: int = 16, **hp: Any
) -> Variant:
    """The same net on the bundled digits, resized to `input_size`, held to 95% test accuracy.

    The large nets (AlexNet, VGG, NiN, GoogLeNet, ResNet) get 10-20 epochs at the smallest
    input they take (GoogLeNet and ResNet pool globally: 16x16), so each runs in minutes on a
    CPU; bench/FIDELITY.md shows which of them reach 95% so."""
    overrides: dict[str, Any] = {
        "dataset": {"name": "digits", "val_fraction": 0.1},
        "hyperparameters": {"lr": lr, "epochs": epochs, "batch_size": batch_size, **hp},
    }
    if input_size is not None:
        overrides["model"] = {"input_size": input_size}
    side = f"{input_size}x{input_size}" if input_size else "the net's default size"
    return Variant(
        name="digits",
        description=f"scikit-learn's bundled 8x8 digits (offline), resized to {side}",
        overrides=overrides,
        checks=DIGITS_ACC,
    )


def cnn(
    name: str,
    *,
    title: str,
    chapter: str,
    model: dict[str, Any],
    hp: dict[str, Any],
    book: tuple[float, float, float],
    printed: str,
    resize: int | None,
    variant: Variant,
    test_range: tuple[float, float] | None = None,
    notes: tuple[str, ...] = (),
) -> Recipe:
    """A `train_ch6` experiment on Fashion-MNIST: book's (train loss, train acc, test acc)."""
    ranges = {"test_acc": test_range} if test_range else {}
    low, high = test_range or (book[2] - 0.03, book[2] + 0.03)
    return Recipe(
        name=name,
        title=title,
        chapter=chapter,
        spec={
            "experiment": name,
            "model": model,
            "dataset": FASHION,
            "hyperparameters": {**hp, "init": "xavier_uniform", **NO_DIAGNOSTICS},
        },
        book={"train_loss": book[0], "train_acc": book[1], "test_acc": book[2]},
        book_printed=printed,
        book_dataset="fashion_mnist",
        preprocessing=FASHION_PREP.format(resize=f", Resize({resize})" if resize else ""),
        init=CH6_INIT,
        checks=(Check("test_acc", low=round(low, 3), high=round(high, 3), why="book's range"),),
        variants=(variant,),
        notes=notes,
        book_ranges=ranges,
    )


CNN_RECIPES = (
    cnn(
        "lenet",
        title="LeNet-5 (sigmoid, average pooling)",
        chapter="7.6",
        model={"arch": "lenet", "config": {"activation": "sigmoid"}},
        hp=sgd(0.9, 10, 256),
        book=(0.469, 0.823, 0.779),
        printed="loss 0.469, train acc 0.823, test acc 0.779 (E: 0.455/0.831/0.789); 55,297 ex/s",
        resize=None,
        test_range=(0.779, 0.821),
        variant=digits(0.9, input_size=28),
    ),
    cnn(
        "alexnet",
        title="AlexNet",
        chapter="8.1",
        model={"arch": "alexnet", "input_size": 224, "config": {"dropout": 0.5}},
        hp=sgd(0.01, 10, 128),
        book=(0.331, 0.878, 0.883),
        printed="loss 0.331, train acc 0.878, test acc 0.883 (E: 0.327/0.880/0.882); 3,942 ex/s",
        resize=224,
        variant=digits(0.01, input_size=65, epochs=15, momentum=0.9),
        notes=(
            "digits variant: plain SGD stays near chance for many epochs on 1,257 small "
            "images, so it adds momentum 0.9 (15 epochs).",
        ),
    ),
    cnn(
        "vgg-small",
        title="VGG-11 with a quarter of the channels",
        chapter="8.2",
        model={
            "arch": "vgg",
            "input_size": 224,
            "config": {"conv_arch": [[1, 16], [1, 32], [2, 64], [2, 128], [2, 128]]},
        },
        hp=sgd(0.05, 10, 128),
        book=(0.178, 0.935, 0.920),
        printed="loss 0.178, train acc 0.935, test acc 0.920 (E: 0.185/0.931/0.922); 2,464 ex/s",
        resize=224,
        variant=digits(0.05, input_size=32, epochs=15),
    ),
    cnn(
        "nin",
        title="Network in Network",
        chapter="8.3",
        model={"arch": "nin", "input_size": 224},
        hp=sgd(0.1, 10, 128),
        book=(0.563, 0.786, 0.790),
        printed="loss 0.563, train acc 0.786, test acc 0.790; unstable across builds",
        resize=224,
        test_range=(0.378, 0.879),
        variant=digits(
            0.0003,
            input_size=67,
            epochs=25,
            optimizer="adam",
            lr_schedule={"name": "cosine", "warmup_epochs": 2},
        ),
        notes=(
            "The book's builds vary widely (test 0.378-0.879): NiN's ReLU logits stall.",
            "digits variant: the last block ends in a ReLU over one channel per class, so a class "
            "whose channel is negative for every input gets no gradient and is never predicted. "
            "With zero biases the deep features hardly depend on the input at init, so 3-6 of the "
            "10 class channels start dead (seeds 0-9); SGD (lr 0.01-0.05, momentum 0.9) and Adam "
            "at lr 0.001 push the live ones down to 0 as well and stall at chance. The variant "
            "trains with Adam at lr 0.0003, a 2-epoch warm-up and a cosine decay over 25 epochs "
            "(about 3 minutes on one thread), which revives the dead channels for some seeds "
            "only: test accuracy 0.992 (seed 0) and 0.981 (seed 1), but seeds 2 and 3 stall near "
            "0.59 train accuracy with about 4 classes never predicted. Not robust: Kaiming init, "
            "lr 0.0001, batch 64, dropout 0 or 0.8, weight decay 0.001 (2 of 4 seeds) and a 99x99 "
            "input (2 of 4 seeds) did not fix it either; it would take a change to the net.",
        ),
    ),
    cnn(
        "googlenet",
        title="GoogLeNet",
        chapter="8.4",
        model={"arch": "googlenet", "input_size": 96},
        hp=sgd(0.1, 10, 128),
        book=(0.262, 0.900, 0.886),
        printed="loss 0.262, train acc 0.900, test acc 0.886 (E: 0.232/0.913/0.883); 3,266 ex/s",
        resize=96,
        variant=digits(
            0.0003,
            input_size=32,
            epochs=20,
            optimizer="adam",
            init="kaiming_uniform",
            lr_schedule={"name": "cosine", "warmup_epochs": 2},
        ),
        notes=(
            "One of the book's builds diverged to NaN.",
            "digits variant: at 16x16 the stem leaves too little to pool, so it trains at 32x32. "
            "With Xavier init and Adam at lr 0.001 it was unstable (test 0.73-0.96 between runs): "
            "without BatchNorm, Xavier shrinks the signal through the ~22 ReLU layers. The variant "
            "uses Kaiming (He) init, which keeps its scale, and Adam at lr 0.0003 with a 2-epoch "
            "warm-up and a cosine decay over 20 epochs: test accuracy 0.992 for seeds 0, 1 and 2 "
            "(one thread, about 3.5 minutes each).",
        ),
    ),
    cnn(
        "lenet-bn-scratch",
        title="LeNet with the from-scratch BatchNorm",
        chapter="8.5",
        model={"arch": "lenet_bn", "config": {"batchnorm": "scratch", "activation": "sigmoid"}},
        hp=sgd(1.0, 10, 256),
        book=(0.273, 0.899, 0.807),
        printed="loss 0.273, train acc 0.899, test acc 0.807 (test 0.64-0.86); 32,294 ex/s",
        resize=None,
        test_range=(0.64, 0.86),
        variant=digits(1.0, input_size=28),
        notes=("BatchNorm from scratch (models/scratch.py): moving averages with momentum 0.9.",),
    ),
    cnn(
        "lenet-bn",
        title="LeNet with nn.BatchNorm",
        chapter="8.5",
        model={"arch": "lenet_bn", "config": {"batchnorm": "torch", "activation": "sigmoid"}},
        hp=sgd(1.0, 10, 256),
        book=(0.267, 0.902, 0.708),
        printed="loss 0.267, train acc 0.902, test acc 0.708 (test 0.71-0.88); 50,597 ex/s",
        resize=None,
        test_range=(0.70, 0.88),
        variant=digits(1.0, input_size=28),
    ),
    cnn(
        "resnet18",
        title="ResNet-18",
        chapter="8.6",
        model={"arch": "resnet18", "input_size": 96},
        hp=sgd(0.05, 10, 256),
        book=(0.012, 0.997, 0.893),
        printed="loss 0.012, train acc 0.997, test acc 0.893 (test 0.882-0.922); 5,033 ex/s",
        resize=96,
        test_range=(0.882, 0.922),
        variant=digits(0.05, input_size=16, epochs=10),
    ),
)
