"""The `d2l-service` model commands: `predict`, `models`, `alias`, `delete-model`, `export`.

Each takes a model id or an alias (`digits:production`) wherever it takes MODEL_ID, as the API
does."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from d2l_client.client import Client
from d2l_client.tables import format_table

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def cmd_predict(client: Client, args: argparse.Namespace) -> int:
    paths = [Path(name) for name in args.files]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise SystemExit(f"no such file: {', '.join(missing)}")
    images = [path for path in paths if path.suffix.lower() in IMAGE_SUFFIXES]
    arrays = [path for path in paths if path.suffix.lower() == ".json"]
    others = sorted(set(paths) - set(images) - set(arrays))
    if others:
        raise SystemExit(
            f"predict takes PNG/JPEG images or .json files of raw samples; got {others[0]}"
        )
    results = []
    if images:
        answer = client.predict_images(args.model_id, images, top_k=args.top_k)
        results += list(zip([str(p) for p in images], answer["predictions"], strict=True))
    for path in arrays:
        inputs = json.loads(path.read_text())
        answer = client.predict(args.model_id, inputs, top_k=args.top_k)
        predictions = answer["predictions"]
        results += [(f"{path}[{i}]", prediction) for i, prediction in enumerate(predictions)]
    for name, prediction in results:
        if "value" in prediction:
            print(f"{name}\t{prediction['value']:.6g}")
        else:
            confidence = prediction["probabilities"].get(prediction["label"], 0.0)
            print(f"{name}\t{prediction['label']}\t{confidence:.3f}")
    return 0


def cmd_models(client: Client, args: argparse.Namespace) -> int:
    """Registered models, newest first: id, names, arch, dataset, scores, the job it came from."""
    page = client.models(name=args.name, arch=args.arch, limit=args.limit)
    rows = [
        [
            model["id"],
            ",".join(model.get("aliases", [])),
            model["arch"],
            model["dataset"],
            model.get("metrics", {}).get("test_acc"),
            model["experiment"],
            model["job_id"],
        ]
        for model in page["items"]
    ]
    header = ["model", "aliases", "arch", "dataset", "test_acc", "experiment", "job"]
    print(format_table(header, rows))
    return 0


def cmd_alias(client: Client, args: argparse.Namespace) -> int:
    """Name a model (`--production` moves NAME:production here too), or take a name off it."""
    if args.remove:
        model = client.remove_alias(args.model_id, args.name)
    else:
        model = client.alias(args.model_id, args.name, production=args.production)
    print(f"model {model['id']}: {', '.join(model.get('aliases', [])) or 'no aliases'}")
    return 0


def cmd_delete_model(client: Client, args: argparse.Namespace) -> int:
    client.delete_model(args.model_id)
    print(f"deleted model {args.model_id} (its job and metrics stay)")
    return 0


def cmd_export(client: Client, args: argparse.Namespace) -> int:
    """The net as ONNX or TorchScript, and with `--sidecar` what it needs beside: the
    preprocessing that turns raw samples into its input, and the class names."""
    data = client.export(args.model_id, format=args.format)
    Path(args.output).write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes)", file=sys.stderr)
    if args.sidecar:
        sidecar = client.export_sidecar(args.model_id)
        Path(args.sidecar).write_text(json.dumps(sidecar, indent=2) + "\n")
        print(f"wrote {args.sidecar}", file=sys.stderr)
    return 0
