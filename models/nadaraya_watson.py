"""Nadaraya-Watson kernel regression as attention pooling (ch. 11.2 of d2l.ai).

Unlike the other nets, this one does not map an input batch to outputs on its own: a prediction
for a query is a weighted average of the training targets (values), weighted by how close the
query lies to each training input (key). So the training engine must hand it the training set:

    model = get_model("nadaraya_watson", in_channels=1, num_classes=1, parametric=True)
    keys, values = leave_one_out(x_train, y_train)    # (n, n-1) each: no example sees itself
    loss = ((model(x_train, keys, values) - y_train) ** 2).sum()   # the course's summed MSE
    predictions = model(x_test, x_train, y_train)     # shared keys/values for every query
    model.attention_weights                            # (n_test, n_train), rows sum to 1

The non-parametric model has no parameters at all (nothing to train: evaluate it directly;
an optimizer over `model.parameters()` would be empty).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.registry import register_model


class NadarayaWatson(nn.Module):
    """f(q) = sum_i softmax_i(-((q - k_i) * w)^2 / 2) * v_i, a Gaussian kernel as attention.

    `w` is 1 for the non-parametric model and one learned scalar for the parametric one (it
    sets the kernel's width: a large w attends only to the nearest keys).
    """

    attention_weights: Tensor | None

    def __init__(self, *, parametric: bool = False) -> None:
        super().__init__()
        # As the book: w starts uniform in [0, 1), so the kernel starts wide.
        self.w = nn.Parameter(torch.rand(1)) if parametric else None
        self.attention_weights = None

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        """Predict one value per query.

        queries: (q,). keys and values: (k,) shared by every query (evaluation: the training
        set), or (q, k), one row per query (training with `leave_one_out`). Returns (q,), and
        keeps the (q, k) attention weights, detached, in `self.attention_weights` for plotting.
        """
        if queries.dim() != 1:
            raise ValueError(f"queries must be 1-D (q,), got shape {tuple(queries.shape)}")
        if keys.shape != values.shape or keys.dim() not in (1, 2):
            raise ValueError(
                "keys and values must share a shape, (k,) or (q, k); got "
                f"{tuple(keys.shape)} and {tuple(values.shape)}"
            )
        if keys.dim() == 2 and keys.shape[0] != queries.shape[0]:
            raise ValueError(f"{keys.shape[0]} rows of keys for {queries.shape[0]} queries")
        differences = queries.unsqueeze(-1) - keys  # broadcasts to (q, k)
        if self.w is not None:
            differences = differences * self.w
        weights = torch.softmax(-(differences**2) / 2, dim=-1)
        self.attention_weights = weights.detach()
        return (weights * values).sum(dim=-1)


def leave_one_out(inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Keys and values (n, n-1) for training: row i holds every training example but the i-th.

    Without this, each training query would find itself at distance 0 and the parametric
    model would learn an ever narrower kernel that just copies its own target.
    """
    count = inputs.shape[0]
    others = ~torch.eye(count, dtype=torch.bool, device=inputs.device)
    keys = inputs.expand(count, count)[others].reshape(count, count - 1)
    values = targets.expand(count, count)[others].reshape(count, count - 1)
    return keys, values


@register_model(
    "nadaraya_watson", chapter="11.2", default_input_size=1, min_input_size=1, task="regression"
)
def nadaraya_watson(
    *,
    in_channels: int = 1,
    num_classes: int = 1,
    input_size: int = 1,
    parametric: bool = False,
) -> nn.Module:
    """Nadaraya-Watson regression (ch. 11.2 Attention Pooling; Nadaraya 1964, Watson 1964).

    1-D kernel regression, non-parametric (Gaussian kernel) or with one learned width
    (`parametric=True`). `in_channels`, `num_classes` and `input_size` are accepted for the
    registry's uniform signature and ignored: the model takes scalar queries and predicts one
    scalar each. See the module docstring for `forward(queries, keys, values)`.
    """
    if not isinstance(parametric, bool):
        raise ValueError(f"parametric must be true or false, got {parametric!r}")
    return NadarayaWatson(parametric=parametric)
