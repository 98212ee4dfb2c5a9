"""The client commands' arguments, added to the `d2l-service` parser by `cli.main`.

Reading $D2L_URL / $D2L_TOKEN here is deliberate: the client runs on people's laptops, far
from the service's settings."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from d2l_client import cli, model_cli
from d2l_client.client import DEFAULT_URL, Client
from d2l_client.errors import D2LError

Handler = cli.Handler


def with_client(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """A parser handler: connect to --url, run, and turn the server's refusals into a message."""

    def run(args: argparse.Namespace) -> int:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
        try:
            with Client(args.url, token=args.token) as client:
                return handler(client, args)
        except D2LError as error:
            print(f"d2l-service: {error}", file=sys.stderr)
            return 1

    return run


def connection_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("D2L_URL", DEFAULT_URL),
        help="the service (default: $D2L_URL, else %(default)s)",
    )
    common.add_argument("--token", default=os.environ.get("D2L_TOKEN"), help="bearer token")
    return common


def job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default="lenet", help="GET /v1/architectures lists them")
    parser.add_argument("--dataset", default="digits", help="a built-in name or an upload id")
    parser.add_argument("--experiment", help="group name (default: the server's 'default')")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int, dest="batch_size")
    parser.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    parser.add_argument("--hp", nargs="*", default=[], metavar="KEY=VALUE", help="more knobs")
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE", help="net options")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--follow", "-f", action="store_true", help="then follow it to the end")


def add_client_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register every client command on `d2l-service`'s subcommands."""
    common = connection_options()

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, parents=[common], help=help_text)
        parser.set_defaults(handler=with_client(handler))
        return parser

    train = add("train", cli.cmd_train, "submit a training job")
    job_arguments(train)
    train.add_argument("--body", metavar="FILE", help="a full POST /v1/jobs JSON body instead")

    finetune = add("finetune", cli.cmd_finetune, "fine-tune a trained model or uploaded weights")
    job_arguments(finetune)
    source = finetune.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-job", dest="from_job", metavar="JOB_ID")
    source.add_argument("--from-checkpoint", dest="from_checkpoint", metavar="CHECKPOINT_ID")
    finetune.add_argument("--freeze", help="features, all_but_head, or prefixes a,b")
    finetune.add_argument("--backbone-lr-mult", type=float, default=0.1, dest="backbone_lr_mult")

    kfold = add("kfold", cli.cmd_kfold, "k-fold model selection between candidates")
    job_arguments(kfold)
    kfold.add_argument("--k", type=int, default=5)
    kfold.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="LABEL:KEY=VALUE,...",
        help="a configuration to compare (repeat), e.g. wd1e-3:weight_decay=0.001",
    )

    sweep = add("sweep", cli.cmd_sweep, "a hyperparameter sweep: each trial a job of its own")
    job_arguments(sweep)
    sweep.add_argument(
        "--space",
        action="append",
        required=True,
        metavar="KEY=CHOICES|LOW:HIGH[:log]",
        help="what to vary (repeat): lr=0.01,0.1  dropout=0.1:0.5  lr=1e-4:1:log  "
        "hidden_sizes=[64],[128,64]; a bare KEY is a hyperparameter, else a net option",
    )
    sweep.add_argument("--search", choices=["random", "grid"], default=None)
    sweep.add_argument("--trials", type=int, help="default: the grid's size, or 10")
    sweep.add_argument("--max-concurrent", type=int, dest="max_concurrent", default=None)
    sweep.add_argument("--metric", choices=["val_acc", "val_loss"], default=None)
    sweep.add_argument("--direction", choices=["maximize", "minimize"], default=None)
    sweep.add_argument("--prune", choices=["none", "median", "asha"], default=None)

    jobs = add("jobs", cli.cmd_jobs, "list jobs, newest first")
    jobs.add_argument("--experiment")
    jobs.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    jobs.add_argument("--limit", type=int, default=20)

    add("show", cli.cmd_show, "a job as JSON").add_argument("job_id")
    follow_help = "each epoch's metrics as a line, under a progress bar on a terminal"
    add("follow", cli.cmd_follow, follow_help).add_argument("job_id")
    add("cancel", cli.cmd_cancel, "cancel a queued or running job").add_argument("job_id")
    add("logs", cli.cmd_logs, "what the worker logged about a job").add_argument("job_id")

    curves = add("curves", cli.cmd_curves, "save learning curves as PNG")
    curves.add_argument("job_id", nargs="?")
    curves.add_argument("-o", "--output", required=True, metavar="FILE.png")
    curves.add_argument("--experiment", help="overlay this experiment's runs instead")
    curves.add_argument("--metric", default="val_acc")

    compare = add("compare", cli.cmd_compare, "an experiment's runs side by side, best first")
    compare.add_argument("experiment")
    compare.add_argument("--metric", default="val_acc")

    add("recipes", cli.cmd_recipes, "the course's experiments, with the book's numbers")
    recipe_arguments(add("recipe", cli.cmd_recipe, "run a course experiment (see: recipes)"))
    model_commands(add)


def recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a recipe's name, e.g. lenet")
    parser.add_argument("--variant", help="e.g. digits, where the book's data are absent")
    parser.add_argument("--experiment", help="default: the recipe's own")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int, dest="batch_size")
    parser.add_argument("--hp", nargs="*", default=[], metavar="KEY=VALUE", help="more knobs")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--follow", "-f", action="store_true", help="then follow it to the end")


def model_commands(add: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    predict = add("predict", model_cli.cmd_predict, "predict image files or JSON raw samples")
    predict.add_argument("model_id")
    predict.add_argument("files", nargs="+", metavar="FILE")
    predict.add_argument("--top-k", type=int, dest="top_k")

    models = add("models", model_cli.cmd_models, "registered models, newest first")
    models.add_argument("--name", help="only models with an alias of this name")
    models.add_argument("--arch")
    models.add_argument("--limit", type=int, default=50)

    alias = add("alias", model_cli.cmd_alias, "name a model: NAME:N, NAME:latest (--production)")
    alias.add_argument("model_id")
    alias.add_argument("name")
    alias.add_argument("--production", action="store_true", help="move NAME:production here")
    alias.add_argument("--remove", action="store_true", help="take NAME off the model instead")

    delete_help = "delete a model and its checkpoints (its job stays)"
    add("delete-model", model_cli.cmd_delete_model, delete_help).add_argument("model_id")

    export = add("export", model_cli.cmd_export, "download a model as ONNX or TorchScript")
    export.add_argument("model_id")
    export.add_argument("-o", "--output", required=True, metavar="FILE")
    export.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    export.add_argument("--sidecar", metavar="FILE.json", help="also its preprocessing, classes")
