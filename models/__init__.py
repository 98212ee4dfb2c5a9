"""The networks of the course. Importing this package registers every architecture."""

# Each family module registers its builders when imported.
from models import alexnet as _alexnet  # noqa: F401
from models import googlenet as _googlenet  # noqa: F401
from models import lenet as _lenet  # noqa: F401
from models import mlp as _mlp  # noqa: F401
from models import nadaraya_watson as _nadaraya_watson  # noqa: F401
from models import nin as _nin  # noqa: F401
from models import resnet as _resnet  # noqa: F401
from models import vgg as _vgg  # noqa: F401
from models.complexity import count_parameters, forward_flops, layer_table, weight_bytes
from models.init import INIT_SCHEMES, init_weights
from models.nadaraya_watson import NadarayaWatson, leave_one_out
from models.registry import (
    Architecture,
    InvalidModelConfigError,
    NetShape,
    UnknownModelError,
    build_net,
    check_config,
    get_architecture,
    get_model,
    list_models,
)

__all__ = [
    "INIT_SCHEMES",
    "Architecture",
    "InvalidModelConfigError",
    "NadarayaWatson",
    "NetShape",
    "UnknownModelError",
    "build_net",
    "check_config",
    "count_parameters",
    "forward_flops",
    "get_architecture",
    "get_model",
    "init_weights",
    "layer_table",
    "leave_one_out",
    "list_models",
    "weight_bytes",
]
