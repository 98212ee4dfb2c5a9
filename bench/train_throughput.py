"""Training throughput of the engine against the loops people would write by hand.

Measured side by side in one process, on the same preprocessed digits, batch size and threads:
- engine: `worker.engine.train_epoch` (what every job runs: metrics, NaN watch, scheduler);
- hand-written: the minimal loop over resident tensors (zero_grad, forward, loss, backward, step);
- course-style: a `DataLoader` over a Dataset that resizes and normalises each item, as the
  course's `load_data_fashion_mnist` does with torchvision transforms.
Each figure is the median examples/sec over epochs timed in turn (engine, hand, course, engine,
...) after a warm-up epoch of each.

Run: python bench/train_throughput.py [--threads 1] [--epochs 5] [--write]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import models
from core.datasets import prepare
from core.schemas import JobCreate
from models.init import init_weights
from worker.engine import TrainState, new_state, train_epoch

RESULTS = Path(__file__).with_name("RESULTS.md")
CASES: dict[str, tuple[str, int]] = {"lenet": ("lenet", 28), "resnet18": ("resnet18", 32)}


class CourseStyleDigits(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Per-item transforms (scale, resize, normalise), as a torchvision transform pipeline does."""

    def __init__(
        self, raw: torch.Tensor, targets: torch.Tensor, size: int, mean: float, std: float
    ):
        self.raw, self.targets, self.size, self.mean, self.std = raw, targets, size, mean, std

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.raw[index].float().div(16).view(1, 1, 8, 8)
        image = F.interpolate(
            image, size=(self.size, self.size), mode="bilinear", align_corners=False
        )
        return (image[0] - self.mean) / self.std, self.targets[index]


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


def bench_case(name: str, *, batch_size: int, epochs: int) -> dict[str, float]:
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
    train = data.train
    generator = torch.Generator().manual_seed(0)

    torch.manual_seed(0)
    state: TrainState = new_state(spec, data, torch.device("cpu"), train_size=len(train))
    counter = iter(range(1, 10**6))

    def engine_epoch() -> int:
        train_epoch(state, train, hp=spec.hyperparameters, generator=generator, epoch=next(counter))
        return len(train)

    torch.manual_seed(0)
    net = init_weights(
        models.get_model(arch, in_channels=1, num_classes=10, input_size=input_size),
        "xavier_uniform",
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)

    def hand_epoch() -> int:
        net.train()
        order = torch.randperm(len(train), generator=generator)
        for begin in range(0, len(order), batch_size):
            index = order[begin : begin + batch_size]
            loss = F.cross_entropy(net(train.inputs[index]), train.targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return len(train)

    from core.datasets.digits import load_digits_raw

    raw = load_digits_raw()
    order = torch.randperm(len(raw.targets), generator=torch.Generator().manual_seed(0))
    train_idx = order[: len(train)]
    course = CourseStyleDigits(
        raw.inputs[train_idx],
        raw.targets[train_idx],
        input_size,
        data.preprocessing.mean[0],
        data.preprocessing.std[0],
    )
    loader = DataLoader(course, batch_size=batch_size, shuffle=True, num_workers=0)
    torch.manual_seed(0)
    course_net = init_weights(
        models.get_model(arch, in_channels=1, num_classes=10, input_size=input_size),
        "xavier_uniform",
    )
    course_optimizer = torch.optim.SGD(course_net.parameters(), lr=0.05)

    def course_epoch() -> int:
        course_net.train()
        for inputs, targets in loader:
            loss = F.cross_entropy(course_net(inputs), targets)
            course_optimizer.zero_grad()
            loss.backward()
            course_optimizer.step()
        return len(course)

    rates = interleaved(
        {"engine": engine_epoch, "hand": hand_epoch, "course": course_epoch}, rounds=epochs
    )
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=9, help="timed epochs of each loop")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md's section")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.cases:
        rates = bench_case(name, batch_size=args.batch_size, epochs=args.epochs)
        size = CASES[name][1]
        row = (
            f"| {name} ({size}x{size}) | {rates['engine']:,.0f} | {rates['hand']:,.0f} "
            f"| {rates['course']:,.0f} "
            f"| {rates['engine'] / rates['hand']:.2f}x | {rates['engine'] / rates['course']:.2f}x |"
        )
        print(row, flush=True)
        rows.append(row)
    if args.write:
        write_results(args, rows)


def write_results(args: argparse.Namespace, rows: list[str]) -> None:
    command = (
        f"python bench/train_throughput.py --threads {args.threads} --epochs {args.epochs} "
        f"--batch-size {args.batch_size} --write"
    )
    section = "\n".join(
        [
            "## Training throughput (CPU)",
            "",
            f"`{command}` on {platform.machine()} with {args.threads} thread(s), "
            f"batch {args.batch_size}, torch {torch.__version__}; examples/sec "
            f"(median of {args.epochs} epochs of each loop, timed in turn):",
            "",
            "| net (input) | engine | hand-written loop | course-style DataLoader "
            "| engine / hand | engine / DataLoader |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "Goals: >= 0.97x the hand-written loop, >= 1.5x the DataLoader loop.",
            "",
        ]
    )
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    start = existing.find("## Training throughput (CPU)")
    if start >= 0:
        end = existing.find("\n## ", start + 1)
        existing = existing[:start] + existing[end + 1 if end >= 0 else len(existing) :]
    RESULTS.write_text(existing.rstrip() + "\n\n" + section)


if __name__ == "__main__":
    main()
