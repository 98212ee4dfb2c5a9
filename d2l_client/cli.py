"""The `d2l-service` job commands, which talk to a running service over HTTP (through `Client`).

`train`, `finetune`, `kfold`, `sweep`, `recipe`, `recipes`, `jobs`, `show`, `follow`, `cancel`,
`logs`, `curves`, `compare` (the model commands are in `model_cli`); each takes `--url`
(default: $D2L_URL, else http://127.0.0.1:8000) and `--token` ($D2L_TOKEN). Registered on the
server's own parser by `cli.main`, so one command does both.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from d2l_client.calls import job_body, recipe_body, sweep_settings
from d2l_client.client import Client
from d2l_client.progress import follow_job
from d2l_client.tables import format_table
from d2l_client.types import JobInfo

Handler = Callable[[Client, argparse.Namespace], int]


def parse_pairs(pairs: Sequence[str], what: str) -> dict[str, Any]:
    """`lr=0.1 momentum=0.9 hidden_sizes=[256]`: values read as JSON where they parse."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{what}: expected key=value, got {pair!r}")
        try:
            parsed[key] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key] = raw
    return parsed


def job_options(args: argparse.Namespace) -> dict[str, Any]:
    """What train, finetune and kfold share: the model, data, knobs and where it runs."""
    hyperparameters = parse_pairs(args.hp, "--hp")
    for flag in ("epochs", "lr", "batch_size", "optimizer"):
        if getattr(args, flag) is not None:
            hyperparameters[flag] = getattr(args, flag)
    return {
        "arch": args.arch,
        "dataset": args.dataset,
        "experiment": args.experiment,
        "config": parse_pairs(args.config, "--config"),
        "hyperparameters": hyperparameters,
        "device": args.device,
    }


def submit_and_maybe_follow(
    client: Client,
    body: dict[str, Any],
    args: argparse.Namespace,
    *,
    then: Callable[[JobInfo], None] | None = None,
    noun: str = "job",
) -> int:
    """Submit; print the id, or follow it to the end and `then` say more about the finished job."""
    job = client.submit(body)
    print(f"{noun} {job.id} {job.status}", file=sys.stderr)
    if not args.follow:
        print(job.id)
        return 0
    code = follow_job(client, job.id)
    if then is not None:
        then(client.get_job(job.id))
    return code


def cmd_train(client: Client, args: argparse.Namespace) -> int:
    if args.body is not None:
        body = json.loads(Path(args.body).read_text())
    else:
        body = job_body("train", **job_options(args))
    return submit_and_maybe_follow(client, body, args)


def cmd_finetune(client: Client, args: argparse.Namespace) -> int:
    source = {"job_id": args.from_job} if args.from_job else {"checkpoint_id": args.from_checkpoint}
    finetune: dict[str, Any] = {"source": source, "backbone_lr_mult": args.backbone_lr_mult}
    if args.freeze:
        freeze = args.freeze.split(",")
        finetune["freeze"] = freeze[0] if freeze[0] in ("features", "all_but_head") else freeze
    body = job_body("finetune", finetune=finetune, **job_options(args))
    return submit_and_maybe_follow(client, body, args)


def cmd_recipe(client: Client, args: argparse.Namespace) -> int:
    """Run a course recipe; the flags given override its hyperparameters, experiment, device.
    Followed, it ends with the book's numbers beside the job's."""
    hyperparameters = parse_pairs(args.hp, "--hp")
    for flag in ("epochs", "lr", "batch_size"):
        if getattr(args, flag) is not None:
            hyperparameters[flag] = getattr(args, flag)
    body = recipe_body(
        args.name,
        variant=args.variant,
        experiment=args.experiment,
        device=args.device,
        hyperparameters=hyperparameters or None,
    )
    return submit_and_maybe_follow(client, body, args, then=print_book)


def print_book(job: JobInfo) -> None:
    """`book 0.779 test_acc (7.6 LeNet-5 ...), this job 0.969: test_acc 0.95 - 1.0 holds`."""
    book = job.get("book")
    if not book:
        return
    numbers = ", ".join(f"{key} {value}" for key, value in book["book"].items())
    print(f"book ({book['chapter']} {book['title']}): {numbers}")
    for check in book["checks"]:
        verdict = {True: "holds", False: "does not hold", None: "not measured"}[check["within"]]
        ours = "-" if check["ours"] is None else f"{check['ours']:.4g}"
        print(
            f"  {check['metric']} {ours}, expected {check['expected']} ({check['why']}): {verdict}"
        )
    if book["overrides"]:
        print(f"  changed from the recipe: {'; '.join(book['overrides'])}")


def cmd_recipes(client: Client, _args: argparse.Namespace) -> int:
    """Every course recipe: what it trains, the book's test accuracy, whether its data are here."""
    rows = [
        [
            recipe["name"],
            recipe["chapter"],
            recipe["title"],
            recipe["book"].get("test_acc"),
            "yes" if recipe["book_data"]["available"] else "no",
            ",".join(variant["name"] for variant in recipe["variants"]),
        ]
        for recipe in client.recipes()
    ]
    print(
        format_table(["recipe", "chapter", "title", "book test_acc", "data here", "variants"], rows)
    )
    return 0


def cmd_cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.cancel(args.job_id)
    when = "" if job["status"] == "cancelled" else " (cancel requested: it stops at its next step)"
    print(f"job {job['id']} {job['status']}{when}")
    return 0


def parse_candidate(text: str) -> dict[str, Any]:
    """`wd1e-3:weight_decay=0.001,lr=0.1` -> a candidate overriding those hyperparameters."""
    label, _, overrides = text.partition(":")
    pairs = [pair for pair in overrides.split(",") if pair]
    return {"label": label, "hyperparameters": parse_pairs(pairs, "--candidate")}


def cmd_kfold(client: Client, args: argparse.Namespace) -> int:
    kfold = {"k": args.k, "candidates": [parse_candidate(c) for c in args.candidate]}
    body = job_body("kfold", kfold=kfold, **job_options(args))
    return submit_and_maybe_follow(client, body, args)


def parse_space(pairs: Sequence[str]) -> dict[str, Any]:
    """`lr=0.01,0.1` (choices), `dropout=0.1:0.5` (a range), `lr=1e-4:1:log`,
    `hidden_sizes=[64],[128,64]` (choices that are JSON lists)."""
    space: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key or not raw:
            raise SystemExit(f"--space: expected KEY=CHOICES or KEY=LOW:HIGH, got {pair!r}")
        bounds = raw.split(":")
        if len(bounds) in (2, 3) and not raw.startswith("["):
            try:
                low, high = json.loads(bounds[0]), json.loads(bounds[1])
            except json.JSONDecodeError:
                raise SystemExit(f"--space {key}: LOW:HIGH must be numbers, got {raw!r}") from None
            space[key] = {"low": low, "high": high, "log": bounds[2:] == ["log"]}
            continue
        try:
            space[key] = json.loads(f"[{raw}]")
        except json.JSONDecodeError:
            space[key] = raw.split(",")  # plain words, e.g. activation=relu,sigmoid
    return space


def cmd_sweep(client: Client, args: argparse.Namespace) -> int:
    settings = sweep_settings(
        parse_space(args.space),
        trials=args.trials,
        max_concurrent=args.max_concurrent,
        search=args.search,
        metric=args.metric,
        direction=args.direction,
        prune=args.prune,
    )
    body = job_body("sweep", sweep=settings, **job_options(args))
    return submit_and_maybe_follow(client, body, args, then=print_best_trial, noun="sweep")


def print_best_trial(sweep: JobInfo) -> None:
    result = sweep.get("result") or {}
    if result.get("best_trial"):
        best = json.dumps(result["best_params"])
        print(
            f"best trial {result['best_trial']}: {result['metric']}="
            f"{result['best_value']:.4g} {best}"
        )


def cmd_jobs(client: Client, args: argparse.Namespace) -> int:
    page = client.list_jobs(
        experiment=args.experiment, status=args.status, limit=args.limit, offset=0
    )
    rows = [
        [
            job["id"],
            job["status"],
            job["kind"],
            job["experiment"],
            job["params"]["model"]["arch"],
            job["params"]["dataset"]["name"],
            f"{job['progress']['epoch']}/{job['progress']['epochs']}",
            job["metrics"].get("val_acc"),
            job.get("model_id") or "",
        ]
        for job in page["items"]
    ]
    header = ["id", "status", "kind", "experiment", "arch", "dataset", "epoch", "val_acc", "model"]
    print(format_table(header, rows))
    print(f"{len(rows)} of {page['total']} jobs", file=sys.stderr)
    return 0


def cmd_show(client: Client, args: argparse.Namespace) -> int:
    print(json.dumps(client.get_job(args.job_id), indent=2))
    return 0


def cmd_follow(client: Client, args: argparse.Namespace) -> int:
    return follow_job(client, args.job_id)


def cmd_logs(client: Client, args: argparse.Namespace) -> int:
    sys.stdout.write(client.logs(args.job_id))
    return 0


def cmd_curves(client: Client, args: argparse.Namespace) -> int:
    if args.experiment:
        png = client.experiment_curves_png(args.experiment, metric=args.metric)
    elif args.job_id:
        png = client.curves_png(args.job_id)
    else:
        raise SystemExit("curves: give a JOB_ID or --experiment NAME")
    Path(args.output).write_bytes(png)
    print(f"wrote {args.output} ({len(png)} bytes)", file=sys.stderr)
    return 0


def cmd_compare(client: Client, args: argparse.Namespace) -> int:
    table = client.compare(args.experiment, metric=args.metric)
    varying = table["varying"]
    header = ["rank", "job", "status", args.metric, *varying, "gap_acc", "params", "wall_s"]
    rows = [
        [
            run["rank"] or "",
            run["job_id"][:12],
            run["status"],
            run["value"],
            *[run["settings"].get(path) for path in varying],
            run["gap"].get("acc"),
            run["parameters"],
            run["wall_time_s"],
        ]
        for run in table["runs"]
    ]
    print(format_table(header, rows))
    return 0
