"""The course's `try_gpu` / `try_all_gpus` (ch. 6.7), and what a job's `device` field means."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import torch


class DeviceUnavailableError(RuntimeError):
    """The job asked for a device this worker does not have."""


def try_gpu(i: int = 0) -> torch.device:
    """GPU `i` if it exists, else the CPU."""
    if torch.cuda.device_count() >= i + 1:
        return torch.device(f"cuda:{i}")
    return torch.device("cpu")


def try_all_gpus() -> list[torch.device]:
    """Every visible GPU, or `[cpu]` when there is none."""
    devices = [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    return devices if devices else [torch.device("cpu")]


def resolve_device(requested: str) -> torch.device:
    """`auto` is `try_gpu()`, `all` the first of `try_all_gpus()`; `cuda`/`cuda:N` must exist
    here, or the job fails saying so."""
    if requested == "auto":
        return try_gpu()
    if requested == "all":
        return try_all_gpus()[0]
    if requested == "cpu":
        return torch.device("cpu")
    index = int(requested.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        have = f"{count} GPU(s)" if count else "no GPU"
        raise DeviceUnavailableError(
            f"job asks for {requested} but this worker has {have}; "
            "submit with device 'auto' or 'cpu', or run a worker on a GPU machine"
        )
    return torch.device(f"cuda:{index}")


def data_parallel_size(requested: str) -> int:
    """How many processes train a job: every GPU for `all`, else one."""
    return len(try_all_gpus()) if requested == "all" and torch.cuda.is_available() else 1


def describe(device: torch.device, processes: int = 1) -> str:
    """A device as the job row records it: 'cuda:0 (NVIDIA H100)', 'cpu', or
    'cuda:0-3 (4 x NVIDIA H100, DistributedDataParallel)'."""
    if device.type != "cuda":
        return str(device)
    name = torch.cuda.get_device_name(device)
    if processes > 1:
        return f"cuda:0-{processes - 1} ({processes} x {name}, DistributedDataParallel)"
    return f"{device} ({name})"


# Where a container's memory limit is read: cgroup v2, then v1 (their "no limit" is a huge
# number, or "max").
CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


def memory_limit() -> int:
    """The memory this worker's jobs may use: the machine's RAM, or less where a cgroup (a
    container's limit) or an address-space rlimit holds the process to less."""
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    for path in CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            limits.append(int(text))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    return min(limits)


def inventory(jobs_at_once: int = 1) -> list[dict[str, object]]:
    """What this worker can train on, as GET /v1/workers shows it; `jobs_at_once` (its
    concurrency) share its memory, which the submission check divides among them."""
    gpus: list[dict[str, object]] = []
    for index in range(torch.cuda.device_count()):
        properties = torch.cuda.get_device_properties(index)
        gpus.append(
            {
                "name": f"cuda:{index}",
                "type": "cuda",
                "model": properties.name,
                "memory_bytes": properties.total_memory,
            }
        )
    cpu: dict[str, object] = {
        "name": "cpu",
        "type": "cpu",
        "cores": os.cpu_count(),
        "memory_bytes": memory_limit(),
        "jobs_at_once": jobs_at_once,
        "threads": torch.get_num_threads(),
    }
    return [*gpus, cpu]
