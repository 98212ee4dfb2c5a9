"""Training throughput of the engine against the loops people would write by hand.

Measured side by side in one process, on the same digits, batch size, threads and device:
- engine: `worker.training_loop.train_epoch` (what every job runs: metrics, NaN watch, scheduler),
  with the raw samples resident on the training device and each minibatch made at network size there
  (gather, scale, resize, normalise);
- hand-written: the minimal loop over tensors already at network size, made once before the
  loop (zero_grad, forward, loss, backward, step): the upper bound of any data path;
- course-style: the course's loader, `torchvision.datasets.FashionMNIST` reading IDX files (the
  digits written in that format) through `Resize` + `ToTensor` (+ `Normalize`, as the engine
  normalises) in a `DataLoader`, each batch moved to the device, as `train_ch6` does.
Each figure is the median examples/sec over epochs timed in turn (engine, hand, course, engine,
...) after a warm-up epoch of each. The batch size defaults to the course's 256 for both nets.

Run: python bench/train_throughput.py [--device cpu|cuda] [--threads 1] [--epochs 9] [--write]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from results_file import replace_section  # bench/ beside this script
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import FashionMNIST

import models
from core.datasets import prepare
from core.datasets.digits import load_digits_raw
from core.jobs.schemas import JobCreate
from core.preprocessing import apply
from models.init import init_weights
from worker.batches import Feed
from worker.engine import new_state
from worker.objectives import classification
from worker.training_loop import train_epoch
from worker.training_state import TrainState

CASES: dict[str, tuple[str, int]] = {"lenet": ("lenet", 28), "resnet18": ("resnet18", 32)}


def write_idx(path: Path, array: torch.Tensor) -> None:
    """LeCun's IDX format, as torchvision's MNIST classes read it: ubyte data, big-endian sizes."""
    header = struct.pack(">HBB", 0, 0x08, array.dim()) + struct.pack(
        f">{array.dim()}I", *array.shape
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.to(torch.uint8).numpy().tobytes())


def course_dataset(
    root: Path, images: torch.Tensor, labels: torch.Tensor, size: int, mean: float, std: float
) -> FashionMNIST:
    """The digits as Fashion-MNIST files, read by the course's loader with its transforms."""
    raw = root / "FashionMNIST" / "raw"
    pixels = (images * 16).clamp(0, 255)  # grey levels 0-16 as the bytes 0-255 of an IDX image
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", pixels)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    pipeline = transforms.Compose(
        [transforms.Resize(size), transforms.ToTensor(), transforms.Normalize([mean], [std])]
    )
    return FashionMNIST(str(root), train=True, transform=pipeline, download=False)


def interleaved(epochs: dict[str, Callable[[], int]], rounds: int) -> dict[str, float]:
    """Median examples/sec of each loop, timing one epoch of each in turn, `rounds` times.

    Alternating epochs makes drift on a shared machine hit every loop alike; one warm-up epoch
    each comes first."""
    for epoch in epochs.values():
        epoch()
    rates: dict[str, list[float]] = {name: [] for name in epochs}
    for _ in range(rounds):
        for name, epoch in epochs.items():
            started = time.perf_counter()
            count = epoch()
            rates[name].append(count / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in rates.items()}


def bench_case(
    name: str,
    *,
    batch_size: int,
    epochs: int,
    device: torch.device,
    loader_workers: int,
    scratch: Path,
) -> dict[str, float]:
    arch, input_size = CASES[name]
    spec = JobCreate.model_validate(
        {
            "model": {"arch": arch, "input_size": input_size},
            "dataset": {"name": "digits"},
            "hyperparameters": {"batch_size": batch_size, "lr": 0.05, "layer_diagnostics": False},
        }
    )
    data = prepare(
        "digits",
        root=Path("/nonexistent"),
        input_size=input_size,
        val_fraction=0.1,
        test_fraction=0.2,
        seed=0,
    )
    data = data.to(device)  # the raw samples, resident
    train = data.train
    generator = torch.Generator().manual_seed(0)

    torch.manual_seed(0)
    state: TrainState = new_state(spec, data, device, train_size=len(train), feed=Feed(device))
    counter = iter(range(1, 10**6))

    def engine_epoch() -> int:
        train_epoch(
            state,
            train,
            hp=spec.hyperparameters,
            generator=generator,
            epoch=next(counter),
            objective=classification(spec.hyperparameters.label_smoothing),
        )
        return len(train)

    torch.manual_seed(0)
    net = init_weights(
        models.get_model(arch, in_channels=1, num_classes=10, input_size=input_size),
        "xavier_uniform",
    ).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)

    inputs = apply(data.preprocessing, train.samples[train.rows])  # made once, before the loop
    targets = train.targets

    def hand_epoch() -> int:
        net.train()
        order = torch.randperm(len(train), generator=generator).to(device)
        for begin in range(0, len(order), batch_size):
            index = order[begin : begin + batch_size]
            loss = F.cross_entropy(net(inputs[index]), targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return len(train)

    raw = load_digits_raw()
    order = torch.randperm(len(raw.targets), generator=torch.Generator().manual_seed(0))
    train_idx = order[: len(train)]
    course = course_dataset(
        scratch / name,
        raw.inputs[train_idx],
        raw.targets[train_idx],
        input_size,
        data.preprocessing.mean[0],
        data.preprocessing.std[0],
    )
    loader = DataLoader(
        course,
        batch_size=batch_size,
        shuffle=True,
        num_workers=loader_workers,
        persistent_workers=loader_workers > 0,
        pin_memory=device.type == "cuda",
    )
    torch.manual_seed(0)
    course_net = init_weights(
        models.get_model(arch, in_channels=1, num_classes=10, input_size=input_size),
        "xavier_uniform",
    ).to(device)
    course_optimizer = torch.optim.SGD(course_net.parameters(), lr=0.05)

    def course_epoch() -> int:
        course_net.train()
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            loss = F.cross_entropy(course_net(inputs), targets)
            course_optimizer.zero_grad()
            loss.backward()
            course_optimizer.step()
        return len(course)

    def synchronised(epoch: Callable[[], int]) -> Callable[[], int]:
        """Time the work, not its queueing: wait for the GPU at the end of each epoch."""

        def run() -> int:
            count = epoch()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return count

        return run

    rates = interleaved(
        {
            "engine": synchronised(engine_epoch),
            "hand": synchronised(hand_epoch),
            "course": synchronised(course_epoch),
        },
        rounds=epochs,
    )
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=9, help="timed epochs of each loop")
    parser.add_argument("--batch-size", type=int, default=256, help="the course's, for both nets")
    parser.add_argument(
        "--loader-workers", type=int, default=0, help="DataLoader workers of the course-style loop"
    )
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md's section")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="d2l-bench-") as scratch:
        for name in args.cases:
            rows.append(run_case(name, args, device, Path(scratch)))
    if args.write:
        write_results(args, rows)


def run_case(name: str, args: argparse.Namespace, device: torch.device, scratch: Path) -> str:
    """One table row: the three loops' examples/sec and the engine's ratios to the others."""
    rates = bench_case(
        name,
        batch_size=args.batch_size,
        epochs=args.epochs,
        device=device,
        loader_workers=args.loader_workers,
        scratch=scratch,
    )
    size = CASES[name][1]
    row = (
        f"| {name} ({size}x{size}) | {rates['engine']:,.0f} | {rates['hand']:,.0f} "
        f"| {rates['course']:,.0f} "
        f"| {rates['engine'] / rates['hand']:.2f}x | {rates['engine'] / rates['course']:.2f}x |"
    )
    print(row, flush=True)
    return row


def write_results(args: argparse.Namespace, rows: list[str]) -> None:
    device = torch.device(args.device)
    command = (
        f"python bench/train_throughput.py --device {args.device} --threads {args.threads} "
        f"--epochs {args.epochs} --batch-size {args.batch_size} "
        f"--loader-workers {args.loader_workers} --write"
    )
    where = platform.machine() if device.type == "cpu" else torch.cuda.get_device_name(device)
    title = f"## Training throughput ({device.type})"
    section = "\n".join(
        [
            title,
            "",
            f"`{command}` on {where} with {args.threads} thread(s), batch {args.batch_size}, "
            f"{args.loader_workers} DataLoader worker(s), torch {torch.__version__}; examples/sec "
            f"(median of {args.epochs} epochs of each loop, timed in turn):",
            "",
            "| net (input) | engine | hand-written loop | course-style DataLoader "
            "| engine / hand | engine / DataLoader |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "Goals (CPU): >= 0.97x the hand-written loop, >= 1.5x the DataLoader loop.",
            "",
        ]
    )
    replace_section(title, section)


if __name__ == "__main__":
    main()
