"""What the names and ids a client writes look like: one alphabet for all of them.

Ids, experiment names, aliases, dataset and architecture names are letters, digits, `_`, `.` and
`-`, so no NUL byte, slash or control character ever reaches a query, a path or a log line (on
PostgreSQL a NUL in a text parameter is an error, not a mismatch). The patterns are JSON Schema
patterns too: the OpenAPI document says exactly what validation accepts.
"""

from __future__ import annotations

import re

from core.errors import InvalidInputError

# A server id (32 hex digits), a built-in dataset, an architecture, an experiment, an alias name.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
NAME_HELP = "1-100 letters, digits, '_', '.' or '-', starting with a letter or digit"
# A model in a URL or a predict job: its id, or name:TAG (a tag that names nothing, such as
# name:beta, is a 404 listing the tags there are: VERSION, latest, production).
MODEL_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}(:[A-Za-z0-9_.-]{1,20})?$"
# A recorded metric as `split_name`: val_acc, train_loss, c0/f1/val_acc.
METRIC_PATTERN = r"^[A-Za-z0-9/]{1,64}_[A-Za-z0-9_]{1,64}$"
# Comma-separated metric names, each `split_name` or a bare name (acc).
METRIC_NAMES_PATTERN = r"^ *[A-Za-z0-9_/]{1,130} *(, *[A-Za-z0-9_/]{1,130} *){0,99}$"
# Free text a client labels things with (an upload's name, a CSV column): no control characters.
LABEL_PATTERN = r"^[^\x00-\x1f\x7f]*$"

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def check_label(text: str, *, what: str) -> str:
    """`text` if it holds no control character (a NUL cannot be stored, a newline forges log
    lines); InvalidInputError naming `what` otherwise."""
    if CONTROL_CHARACTERS.search(text):
        raise InvalidInputError(f"{what}: control characters (such as NUL) are not allowed")
    return text


# What each pattern means, in words: a 422 for a mismatch says this, not only the expression.
PATTERN_HELP = {
    NAME_PATTERN: NAME_HELP,
    MODEL_REF_PATTERN: "a model id, or name:VERSION, name:latest, name:production",
    METRIC_PATTERN: "split_name, e.g. val_acc, train_loss or c0/f1/val_acc",
    METRIC_NAMES_PATTERN: "comma-separated metrics, e.g. val_acc,train_loss",
    LABEL_PATTERN: "text without control characters (such as NUL or a newline)",
}
