"""The model cache: least recently used out first, bounded by the bytes of the weights."""

from __future__ import annotations

from torch import nn

from api.model_cache import ModelCache
from core.preprocessing import Preprocessing
from core.serving.inference import LoadedModel

PREP = Preprocessing(
    raw_shape=(4,), in_channels=1, input_size=4, scale=1.0, mean=(0.0,), std=(1.0,)
)


def model_of(features: int) -> LoadedModel:
    """A model whose weights take features x 4 + 4 float32 values."""
    return LoadedModel(net=nn.Linear(features, 4), preprocessing=PREP, class_names=("a",) * 4)


def test_a_model_reports_the_bytes_of_its_parameters_and_buffers() -> None:
    assert model_of(100).nbytes == (100 * 4 + 4) * 4
    bn = LoadedModel(net=nn.BatchNorm1d(8), preprocessing=PREP, class_names=("a",))
    assert bn.nbytes == (8 + 8) * 4 + (8 + 8) * 4 + 8  # weight, bias, running stats, count


def test_the_least_recently_used_models_go_until_the_new_one_fits() -> None:
    small, large = model_of(100), model_of(300)  # 1,616 and 4,816 bytes
    cache = ModelCache(max_bytes=7_000, max_models=10)
    assert cache.put("a", small) == [] and cache.put("b", small) == []
    assert cache.get("a") is small  # "a" is now the most recently used
    assert cache.put("c", large) == ["b"]
    assert cache.model_ids() == ["a", "c"] and cache.total_bytes == 1_616 + 4_816
    assert cache.put("d", large) == ["a", "c"]
    assert cache.model_ids() == ["d"]


def test_the_count_bound_still_applies() -> None:
    cache = ModelCache(max_bytes=10**9, max_models=2)
    for key in "abc":
        cache.put(key, model_of(1))
    assert cache.model_ids() == ["b", "c"]


def test_a_model_larger_than_the_budget_is_served_but_not_kept() -> None:
    cache = ModelCache(max_bytes=1_000, max_models=10)
    cache.put("small", model_of(10))
    assert cache.put("huge", model_of(1_000)) == []
    assert cache.model_ids() == ["small"] and cache.get("huge") is None
