"""Weight initialisation schemes (ch. 5.4 of d2l.ai, "Numerical Stability and Initialization").

The course shows that the scale of the initial weights decides whether gradients vanish or
explode, and names the schemes a user may want to compare; `init_weights` applies one of them
to every Linear and Conv layer through `net.apply`, as the course's `net.apply(init_fn)` does.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

#: The names `init_weights` understands; "default" keeps PyTorch's own initialisation.
INIT_SCHEMES: tuple[str, ...] = (
    "default",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "normal",
    "constant",
)

#: The layers that carry the weights the schemes are about (BatchNorm keeps gamma=1, beta=0).
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _weight_initialiser(scheme: str, *, std: float, value: float) -> Callable[..., object]:
    """The `torch.nn.init` function for a scheme, its options bound."""
    initialisers: dict[str, Callable[..., object]] = {
        "xavier_uniform": nn.init.xavier_uniform_,
        "xavier_normal": nn.init.xavier_normal_,
        # He et al. 2015: fan-in mode keeps the forward variance under ReLU.
        "kaiming_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
        "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
        "normal": lambda w: nn.init.normal_(w, mean=0.0, std=std),
        "constant": lambda w: nn.init.constant_(w, value),
    }
    return initialisers[scheme]


def init_weights(
    net: nn.Module,
    scheme: str,
    *,
    std: float = 0.01,
    value: float = 0.0,
    zero_bias: bool = True,
) -> nn.Module:
    """Re-initialise every Linear/Conv weight of `net` in place with `scheme`; returns `net`.

    `std` is used by "normal" (mean 0; the course's MLP uses 0.01), `value` by "constant".
    Biases become zero for every scheme but "default"; `zero_bias=False` keeps PyTorch's bias
    init instead, which is what the course's `train_ch6` does with Xavier (it only touches
    weights) when a run must match the book exactly.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(
            f"unknown init scheme {scheme!r}; choose one of: {', '.join(INIT_SCHEMES)}"
        )
    if scheme == "default":
        return net
    if scheme == "normal" and std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    initialise = _weight_initialiser(scheme, std=std, value=value)

    def apply_to_layer(module: nn.Module) -> None:
        if isinstance(module, WEIGHT_LAYERS):
            initialise(module.weight)
            if zero_bias and module.bias is not None:
                nn.init.zeros_(module.bias)

    net.apply(apply_to_layer)
    return net
