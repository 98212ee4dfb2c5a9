"""The book's big nets at the book's sizes: the engine against the course's own data pipeline.

On Fashion-MNIST-format data of the real size (60,000 + 10,000 28x28 images, written here as
IDX files: no download), for AlexNet at 224x224 (batch 128) and ResNet-18 at 96x96 (batch 256),
the book's recipes:
- engine: what a job runs (`worker.engine.load_data`, `worker.training_loop.train_epoch`): the
  raw uint8 samples resident on the device, each minibatch gathered, scaled, resized and
  normalised there;
- course: `torchvision.datasets.FashionMNIST` with `Resize` + `ToTensor` per item in a
  `DataLoader`, each batch moved to the device, as the book's `load_data_fashion_mnist` and
  `train_ch6` do (plain SGD, Xavier init, the same batch size).
Each pipeline runs in a process of its own, so its peak resident memory (VmHWM) is its own:
one warm-up step, then `--steps` timed steps, whose median step time gives its examples/s. The
two pipelines run in turn, `--rounds` times each, and each keeps its best round: on a shared
machine a burst of other work slows whichever process runs through it. "Data" is what building
the data path added to the process's memory (before any step); "peak" is the process's highest
resident memory.

On a GPU, `--precision bf16 --channels-last` trains the engine's nets in bfloat16 autocast with
NHWC tensors (the course's pipeline stays as the book runs it); the book's V100 printed 3.9-4.2k
examples/s for AlexNet and 4.7-5.0k for ResNet-18 at 96x96.

Run: python bench/book_sizes.py [--device cpu|cuda] [--threads 2] [--steps 3]
     [--precision fp32|bf16] [--channels-last] [--write]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from results_file import replace_section  # bench/ beside this script

ROOT = Path(__file__).resolve().parents[1]
CASES = {"alexnet": ("alexnet", 224), "resnet18": ("resnet18", 96)}  # recipe: (arch, side)
PIPELINES = ("engine", "course")
GIB = 2**30


def write_fashion_format(root: Path, *, seed: int = 0) -> None:
    """60,000 + 10,000 random 28x28 grey images with labels, as torchvision's IDX files."""
    from core.datasets.idx import write_idx

    rng = np.random.default_rng(seed)
    raw = root / "FashionMNIST" / "raw"
    for prefix, count in (("train", 60_000), ("t10k", 10_000)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, count))


def memory() -> dict[str, int]:
    """This process's resident memory now and at its peak, in bytes."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def timed(steps: Iterator[int], count: int, device: torch.device) -> float:
    """Examples per second of the median of `count` steps, after one warm-up step."""
    next(steps)
    rates = []
    for _ in range(count):
        started = time.perf_counter()
        examples = next(steps)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(examples / (time.perf_counter() - started))
    return statistics.median(rates)


def engine_steps(
    recipe: str, data_dir: Path, device: torch.device, knobs: dict[str, Any]
) -> Iterator[int]:
    """The job's own path: its data loaded and placed, then one-minibatch epochs."""
    from core.jobs.schemas import JobCreate
    from worker.batches import DataPlan
    from worker.engine import load_data, new_state
    from worker.objectives import classification
    from worker.training_loop import train_epoch

    body = {"recipe": recipe, "device": str(device), "hyperparameters": knobs}
    spec = JobCreate.model_validate(body)
    data, feed = load_data(spec, data_dir, device, DataPlan())
    hp = spec.hyperparameters
    yield 0  # the data are ready: the caller measures what they cost
    torch.manual_seed(hp.seed)
    state = new_state(spec, data, device, train_size=len(data.train), feed=feed)
    generator = torch.Generator().manual_seed(hp.seed)
    epoch = 0
    while True:  # one step per epoch of one minibatch: train_epoch times nothing else
        epoch += 1
        positions = torch.randperm(len(data.train), generator=generator)[: hp.batch_size]
        train_epoch(
            state,
            data.train.subset(positions),
            hp=hp,
            generator=generator,
            epoch=epoch,
            objective=classification(hp.label_smoothing),
        )
        yield hp.batch_size


def course_steps(
    recipe: str, data_dir: Path, device: torch.device, knobs: dict[str, Any]
) -> Iterator[int]:
    """The book's `load_data_fashion_mnist(batch_size, resize)` and `train_ch6` loop."""
    from torch.utils.data import DataLoader
    from torchvision import transforms
    from torchvision.datasets import FashionMNIST

    import models
    from core.recipes import get_recipe
    from models.init import init_weights

    spec = get_recipe(recipe).spec
    arch, side = CASES[recipe]
    batch_size, lr = spec["hyperparameters"]["batch_size"], spec["hyperparameters"]["lr"]
    pipeline = transforms.Compose([transforms.Resize(side), transforms.ToTensor()])
    dataset = FashionMNIST(str(data_dir), train=True, transform=pipeline, download=False)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0)
    yield 0
    torch.manual_seed(0)
    options = spec["model"].get("config", {})
    net = models.get_model(arch, in_channels=1, num_classes=10, input_size=side, **options)
    net = init_weights(net, "xavier_uniform").to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    net.train()
    loss_sum, correct = 0.0, 0.0  # train_ch6's running loss and accuracy, read every step
    while True:
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            logits = net(inputs)
            loss = F.cross_entropy(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += float(loss) * len(targets)
                correct += float((logits.argmax(1) == targets).sum())
            yield len(targets)


def measure(recipe: str, pipeline: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One pipeline in this process: its speed, and the memory of its data and at its peak."""
    make: Callable[..., Iterator[int]] = engine_steps if pipeline == "engine" else course_steps
    torch_device = torch.device(args.device)
    knobs = {"precision": args.precision, "channels_last": args.channels_last}
    import_both_pipelines()  # code is not data: loaded before the memory is read
    before = memory()["VmRSS"]
    run = make(recipe, data_dir, torch_device, knobs)
    next(run)  # the data path is built
    data = memory()["VmRSS"] - before
    rate = timed(run, args.steps, torch_device)
    return {"examples_per_sec": rate, "data_bytes": data, "peak_bytes": memory()["VmHWM"]}


def import_both_pipelines() -> None:
    import torchvision.datasets  # noqa: F401

    import core.recipes  # noqa: F401
    import models  # noqa: F401
    import worker.engine  # noqa: F401


def run_in_child(args: argparse.Namespace, recipe: str, pipeline: str, data_dir: Path) -> Any:
    command = [sys.executable, __file__, "--measure", recipe, pipeline, "--data", str(data_dir)]
    command += ["--device", args.device, "--threads", str(args.threads), "--steps", str(args.steps)]
    command += ["--precision", args.precision] + (["--channels-last"] if args.channels_last else [])
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(recipe: str, engine: dict[str, Any], course: dict[str, Any]) -> str:
    arch, side = CASES[recipe]
    return (
        f"| {arch} ({side}x{side}) | {engine['examples_per_sec']:,.1f} "
        f"| {course['examples_per_sec']:,.1f} "
        f"| {engine['examples_per_sec'] / course['examples_per_sec']:.2f}x "
        f"| {engine['data_bytes'] / 2**20:,.0f} / {engine['peak_bytes'] / GIB:.2f} "
        f"| {course['data_bytes'] / 2**20:,.0f} / {course['peak_bytes'] / GIB:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per pipeline")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each pipeline, in turn")
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="engine")
    parser.add_argument("--channels-last", action="store_true", help="engine: NHWC tensors")
    parser.add_argument("--measure", nargs=2, metavar=("RECIPE", "PIPELINE"))
    parser.add_argument("--data", type=Path)
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md's section")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.measure:
        recipe, pipeline = args.measure
        print(json.dumps(measure(recipe, pipeline, args.data, args)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="d2l-book-sizes-") as scratch:
        data_dir = Path(scratch)
        write_fashion_format(data_dir)
        from core.datasets import load_raw

        load_raw("fashion_mnist", root=data_dir)  # its compact copy, made once, before timing
        for recipe in args.cases:
            runs: dict[str, list[dict[str, Any]]] = {p: [] for p in PIPELINES}
            for _ in range(args.rounds):
                for pipeline in PIPELINES:
                    runs[pipeline].append(run_in_child(args, recipe, pipeline, data_dir))
            best = {p: max(r, key=lambda run: run["examples_per_sec"]) for p, r in runs.items()}
            rows.append(row(recipe, best["engine"], best["course"]))
            print(rows[-1], flush=True)
    if args.write:
        write_results(args, rows)


def write_results(args: argparse.Namespace, rows: list[str]) -> None:
    device = torch.device(args.device)
    command = (
        f"python bench/book_sizes.py --device {args.device} --threads {args.threads} "
        f"--steps {args.steps} --rounds {args.rounds} --precision {args.precision}"
        f"{' --channels-last' if args.channels_last else ''} --write"
    )
    where = platform.machine() if device.type == "cpu" else torch.cuda.get_device_name(device)
    knobs = args.precision + (", channels_last" if args.channels_last else "")
    title = f"## The book's sizes ({device.type}, {knobs})"
    section = "\n".join(
        [
            title,
            "",
            f"`{command}` on {where} with {args.threads} thread(s), torch {torch.__version__}; "
            "60,000 + 10,000 Fashion-MNIST-format images (IDX files); examples/sec of the "
            f"median of {args.steps} steps after a warm-up step, best of {args.rounds} runs "
            "of each pipeline in turn; memory: MiB the data path added before training / GiB "
            "peak resident, each run in a process of its own:",
            "",
            "| net (input) | engine ex/s | course DataLoader ex/s | engine / course "
            "| engine data MiB / peak GiB | course data MiB / peak GiB |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "Goals: >= 2x the course pipeline's examples/s; the data under 1 GiB on the CPU; on "
            "a GPU (bf16, channels_last) >= 5x the book's V100: AlexNet 3.9-4.2k ex/s, "
            "ResNet-18 at 96x96 4.7-5.0k.",
            "",
        ]
    )
    replace_section(title, section)


if __name__ == "__main__":
    main()
