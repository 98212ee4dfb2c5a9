"""Reproduce the book's result table through a running service and write bench/FIDELITY.md.

Every recipe is submitted as an ordinary job (`POST /v1/jobs {"recipe": ...}`) over HTTP, so
this checks the service a learner uses, not the engine in isolation. The synthetic recipes
(weight decay, polynomial fit, Nadaraya-Watson) run exactly as the book; the MLP and CNN recipes
run on the book's Fashion-MNIST where the service has its files, else on their `digits` variant
(which must reach 95% test accuracy). The job's `book` field (core.recipes.compare) decides
whether each number lies within the book's range; this script only collects and prints.

    d2l-service up --port 8765 &            # with D2L_DATA_DIR set to a scratch directory
    python3 bench/fidelity.py --url http://127.0.0.1:8765 --device cpu

It also saves the course's pictures beside the report: the polynomial recipes' train and test
loss curves overlaid, and the attention heatmaps of both Nadaraya-Watson recipes.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed
from core.recipes import get_recipe

HERE = Path(__file__).resolve().parent
SYNTHETIC = (
    "weight-decay-0",
    "weight-decay-3",
    "poly-underfit",
    "poly-normal",
    "poly-overfit",
    "nadaraya-watson",
    "nadaraya-watson-parametric",
)
IMAGE = (
    "mlp",
    "dropout",
    "dropout-scratch",
    "kfold",
    "lenet",
    "alexnet",
    "vgg-small",
    "nin",
    "googlenet",
    "lenet-bn-scratch",
    "lenet-bn",
    "resnet18",
)
NOT_RUN = {
    "finetune": "needs the hotdog images and ImageNet-pretrained ResNet-18 weights",
    "finetune-scratch": "its comparison is with 'finetune', which cannot run here",
}
FINISHED = {"succeeded", "failed", "cancelled"}
RUNS_FILE = "runs.json"  # every run's job as the service returned it, for --keep-others


class Service:
    """The few HTTP calls the report needs, with the standard library only."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read().decode()}") from None
        return raw if ".png" in path else json.loads(raw)

    def save(self, path: str, target: Path) -> str:
        target.write_bytes(self.call("GET", path))
        return target.name


@dataclass
class Run:
    """One recipe job: what was asked, and what came back."""

    recipe: str
    variant: str | None
    job: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    command: str = ""


def plan(service: Service, names: list[str]) -> list[Run]:
    """The book's data where the service has them, else the recipe's first variant."""
    recipes = {recipe["name"]: recipe for recipe in service.call("GET", "/v1/recipes")}
    runs = []
    for name in names:
        recipe = recipes[name]
        if name in NOT_RUN:
            runs.append(Run(name, None, skipped=NOT_RUN[name]))
        elif recipe["book_data"]["available"] and not recipe["requires"]:
            runs.append(Run(name, None))
        elif recipe["variants"]:
            runs.append(Run(name, recipe["variants"][0]["name"]))
        else:
            runs.append(Run(name, None, skipped=recipe["book_data"]["message"]))
    return runs


def submit_all(service: Service, runs: list[Run], *, device: str, synthetic_device: str) -> None:
    for run in runs:
        if run.skipped:
            continue
        body = {
            "recipe": run.recipe,
            "device": synthetic_device if run.recipe in SYNTHETIC else device,
        }
        if run.variant:
            body["recipe_variant"] = run.variant
        run.job = service.call("POST", "/v1/jobs", body)
        print(f"submitted {run.recipe} ({run.variant or 'book'}): {run.job['id']}", flush=True)


def wait_all(service: Service, runs: list[Run], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = [run for run in runs if run.job]
    while pending and time.monotonic() < deadline:
        time.sleep(2)
        for run in list(pending):
            run.job = service.call("GET", f"/v1/jobs/{run.job['id']}")
            if run.job["status"] in FINISHED:
                pending.remove(run)
                took = seconds(run.job)
                print(f"{run.recipe}: {run.job['status']} in {took:.0f}s", flush=True)
    for run in pending:
        run.skipped = f"still {run.job['status']} after {timeout_s:.0f}s"


def seconds(job: dict[str, Any]) -> float:
    if not job.get("started_at") or not job.get("finished_at"):
        return 0.0
    start = datetime.fromisoformat(job["started_at"])
    return (datetime.fromisoformat(job["finished_at"]) - start).total_seconds()


def pictures(service: Service, runs: list[Run], out_dir: Path) -> list[str]:
    """The course's charts: polynomial train/test loss overlaid, and attention heatmaps."""
    saved = []
    by_name = {run.recipe: run for run in runs if run.job.get("status") == "succeeded"}
    if any(name.startswith("poly-") for name in by_name):
        experiment = by_name.get("poly-normal", next(iter(by_name.values()))).job["experiment"]
        query = "metric=train_loss&metric=test_loss&yscale=log"
        saved.append(
            service.save(
                f"/v1/experiments/{experiment}/curves.png?{query}", out_dir / "polynomial-fit.png"
            )
        )
    for name in ("nadaraya-watson", "nadaraya-watson-parametric"):
        if name in by_name:
            path = f"/v1/models/{by_name[name].job['model_id']}/attention.png"
            saved.append(service.save(path, out_dir / f"{name}-attention.png"))
            losses = service.call("GET", f"/v1/jobs/{by_name[name].job['id']}/metrics?name=loss")
            curve = [row["value"] for row in losses if row["split"] == "train"]
            by_name[name].extra["loss per epoch"] = curve
            attention = by_name[name].job["result"]["attention_weights"]["values"]
            peaks = [max(row) for row in attention]
            by_name[name].extra["mean max attention weight"] = sum(peaks) / len(peaks)
    return saved


def kept(path: Path, fresh: list[Run]) -> list[Run]:
    """The earlier runs of other recipes, with this invocation's, in the course's order."""
    earlier = [Run(**row) for row in json.loads(path.read_text())] if path.exists() else []
    rerun = {run.recipe for run in fresh}
    runs = [run for run in earlier if run.recipe not in rerun] + fresh
    order = {name: index for index, name in enumerate((*SYNTHETIC, *IMAGE, *NOT_RUN))}
    return sorted(runs, key=lambda run: order.get(run.recipe, len(order)))


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return "-" if value is None else str(value)


def row(run: Run) -> str:
    variant = run.variant or "book"
    if run.skipped or run.job.get("status") != "succeeded":
        reason = run.skipped or f"{run.job.get('status')}: {run.job.get('error')}"
        return f"| {run.recipe} | {variant} | | | not run: {reason} | |"
    book = run.job["book"]
    printed = book["book_printed"]
    if run.variant:  # the book's numbers are for its own data, shown for reference
        printed = f"(book, on {get_recipe(run.recipe).book_dataset}) " + ", ".join(
            f"{k} {fmt(v)}" for k, v in book["book"].items()
        )
    ours = {k: v for k, v in book["ours"].items() if v is not None} | run.extra
    for check in book["checks"]:
        ours.setdefault(check["metric"], check["ours"])
    checks = "; ".join(
        f"{c['metric']} {c['expected']} ({c['why']}): {'yes' if c['within'] else 'NO'}"
        for c in book["checks"]
    )
    ours_text = ", ".join(f"{k} {fmt(v)}" for k, v in ours.items())
    verdict = {True: "yes", False: "**no**", None: "-"}[book["within"]]
    took = f"{seconds(run.job):.0f}s on {run.job.get('device')}"
    return f"| {run.recipe} | {variant} | {printed} | {ours_text} ({took}) | {checks} | {verdict} |"


def summary(runs: list[Run]) -> str:
    """One line: how many runs lie within range, and which do not."""
    done = [run for run in runs if run.job.get("status") == "succeeded"]
    outside = [run.recipe for run in done if run.job["book"]["within"] is False]
    not_run = [run.recipe for run in runs if run not in done]
    line = f"**{len(done) - len(outside)} of {len(runs)} recipes within range.**"
    if outside:
        line += f" Outside: {', '.join(outside)}."
    if not_run:
        line += f" Not run: {', '.join(not_run)}."
    return line


def report(runs: list[Run], saved: list[str]) -> str:
    commands = list(dict.fromkeys(run.command for run in runs if run.command))
    device = ", ".join(sorted({run.job["device"] for run in runs if run.job.get("device")}))
    lines = [
        "# Fidelity: the book's results reproduced through the service",
        "",
        "Written by `bench/fidelity.py`, which submits each course recipe as a job to a running",
        "service and sets the job's numbers beside the book's (COURSE.md). Regenerate with:",
        "",
        "```bash",
        *commands,
        "```",
        "",
        f"Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; jobs trained on: {device}; client:",
        f"{platform.machine()}, Python {platform.python_version()}. 'book' runs the recipe",
        "exactly as the book; `digits` is the variant for machines without Fashion-MNIST (held to",
        "95% test accuracy, not to the book's Fashion-MNIST numbers, shown for reference).",
        "",
        summary(runs),
        "",
        "| recipe | data | book | ours (wall time) | checks | within? |",
        "|---|---|---|---|---|---|",
        *(row(run) for run in runs),
        "",
    ]
    notes = [(run.recipe, note) for run in runs for note in get_recipe(run.recipe).notes]
    if notes:
        lines += ["Notes from the recipes:", ""]
        lines += [f"- {name}: {note}" for name, note in notes]
        lines.append("")
    if saved:
        lines += ["Pictures the course draws, from the same jobs:", ""]
        lines += [f"- [`{name}`](fidelity/{name})" for name in saved]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--device", default="auto", help="the jobs' device (auto, cpu, cuda)")
    parser.add_argument("--synthetic-device", help="device of the synthetic recipes' jobs")
    parser.add_argument("--recipes", nargs="*", help="default: every recipe of the course")
    parser.add_argument("--synthetic-only", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds for all jobs")
    parser.add_argument("--out", type=Path, default=HERE / "FIDELITY.md")
    parser.add_argument(
        "--keep-others",
        action="store_true",
        help=f"keep the earlier results (fidelity/{RUNS_FILE}) of recipes not run this time",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help=f"rewrite the report from fidelity/{RUNS_FILE} without a service",
    )
    parser.add_argument("--invoked-as", help="the command to record (bench/fidelity_run.sh)")
    args = parser.parse_args(argv)
    picture_dir = args.out.parent / "fidelity"
    if args.render_only:
        runs = kept(picture_dir / RUNS_FILE, [])
        saved = sorted(path.name for path in picture_dir.glob("*.png"))
        args.out.write_text(report(runs, saved))
        print(f"wrote {args.out} from {picture_dir / RUNS_FILE}")
        return 0
    service = Service(args.url)
    names = args.recipes or [
        *SYNTHETIC,
        *(() if args.synthetic_only else (*IMAGE, *NOT_RUN)),
    ]
    runs = plan(service, names)
    submit_all(
        service, runs, device=args.device, synthetic_device=args.synthetic_device or args.device
    )
    wait_all(service, runs, timeout_s=args.timeout)
    picture_dir.mkdir(exist_ok=True)
    pictures(service, runs, picture_dir)
    command = args.invoked_as or "python3 bench/fidelity.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    for run in runs:
        run.command = command
    if args.keep_others:
        runs = kept(picture_dir / RUNS_FILE, runs)
    (picture_dir / RUNS_FILE).write_text(json.dumps([asdict(run) for run in runs], indent=1))
    saved = sorted(path.name for path in picture_dir.glob("*.png"))
    args.out.write_text(report(runs, saved))
    print(f"wrote {args.out}")
    missed = [
        run.recipe
        for run in runs
        if run.job and (run.job["status"] != "succeeded" or run.job["book"]["within"] is False)
    ]
    if missed:
        print(f"outside the book's range or failed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
