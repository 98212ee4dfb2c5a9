"""try_gpu / try_all_gpus semantics and the CPU fallback, on whatever machine runs the tests."""

import torch

from worker import devices


def test_try_gpu_falls_back_to_the_cpu_past_the_last_gpu() -> None:
    count = torch.cuda.device_count()
    assert devices.try_gpu(count) == torch.device("cpu")  # one past the last GPU
    expected = [torch.device(f"cuda:{i}") for i in range(count)] or [torch.device("cpu")]
    assert devices.try_all_gpus() == expected


def test_cpu_and_auto_resolve_and_describe() -> None:
    assert devices.resolve_device("cpu") == torch.device("cpu")
    assert devices.resolve_device("auto") == devices.try_gpu()
    assert devices.describe(torch.device("cpu")) == "cpu"


def test_the_inventory_always_lists_the_cpu_with_its_memory() -> None:
    cpu = devices.inventory()[-1]
    assert cpu["type"] == "cpu" and int(cpu["memory_bytes"]) > 2**20  # type: ignore[call-overload]
    assert len(devices.inventory()) == torch.cuda.device_count() + 1
