"""``python -m hct train | jobs | zoo``: train from a config, manage queued runs, rebuild the model zoo."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _train(args: argparse.Namespace) -> int:
    from hct.train.jobs import write_status
    from hct.train.loop import train

    try:
        result = train(args.config, progress=not args.no_progress)
    except BaseException as err:
        if args.status_file:
            write_status(args.status_file, "failed", error=f"{type(err).__name__}: {err}")
        raise
    if args.status_file:
        write_status(args.status_file, "succeeded", checkpoint=str(result.best_checkpoint))
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def _store(args: argparse.Namespace):
    from hct.train.jobs import JobStore

    return JobStore(args.store)


def _jobs_list(args: argparse.Namespace) -> int:
    store = _store(args)
    store.schedule()
    print(f"{'id':>4}  {'state':<10} {'device':<8} {'created':<20} config")
    for job in store.list():
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created))
        print(f"{job.id:>4}  {job.state:<10} {job.gpu or '-':<8} {created:<20} {job.config.get('out_dir', '')}")
        if job.state == "failed" and job.error:
            print("      " + job.error.strip().splitlines()[-1])
    return 0


def _jobs_launch(args: argparse.Namespace) -> int:
    from hct.train.config import load_config

    config = load_config(args.config)  # refuse a bad config before queueing it
    store = _store(args)
    job = store.submit(config.to_dict())
    store.schedule()
    job = store.get(job.id)
    print(f"job {job.id} {job.state} (log {job.log_file})")
    return 0


def _jobs_follow(args: argparse.Namespace) -> int:
    store = _store(args)
    for line in store.follow(args.id, poll_s=args.poll):
        sys.stdout.write(line)
        sys.stdout.flush()
    job = store.get(args.id)
    print(f"\njob {job.id} {job.state}" + (f": {job.error.strip().splitlines()[-1]}" if job.error else ""))
    return 0 if job.state == "succeeded" else 1


def _jobs_cancel(args: argparse.Namespace) -> int:
    job = _store(args).cancel(args.id)
    print(f"job {job.id} {job.state}")
    return 0


def _zoo(args: argparse.Namespace) -> int:
    from hct.train.zoo import ZooConfig, build_zoo, zoo_config_from_file

    if args.config:
        zoo = zoo_config_from_file(args.config)
    else:
        zoo = ZooConfig(
            out=str(args.out), phantom_dir=str(args.phantom_dir), n_images=args.n_images, image_size=args.image_size,
            patch_size=args.patch_size, epochs_patch=args.epochs_patch, epochs_image=args.epochs_image,
            batch_patch=args.batch_patch, batch_image=args.batch_image, micro_batch=args.micro_batch,
            lr_patch=args.lr_patch, lr_image=args.lr_image, device=args.device, models=tuple(args.models),
            time_budget_s=args.time_budget_s, optimizer=args.optimizer, seed=args.seed, workers=args.workers,
            runs_dir=str(args.runs_dir) if args.runs_dir else None,
        )
    for entry in build_zoo(zoo):
        print(json.dumps(entry))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train``, ``jobs`` and ``zoo``."""
    from hct.train.jobs import DEFAULT_STORE

    parser = subparsers.add_parser("train", help="train a model from a JSON config (resumes if interrupted)")
    parser.add_argument("--config", required=True, type=Path, help="JSON (or YAML) training config")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--status-file", type=Path, help=argparse.SUPPRESS)  # written for the job store
    parser.set_defaults(func=_train)

    jobs = subparsers.add_parser("jobs", help="queue, list, follow and cancel training jobs")
    jobs.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"job database (default {DEFAULT_STORE})")
    actions = jobs.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="jobs and their states").set_defaults(func=_jobs_list)
    launch = actions.add_parser("launch", help="queue a training run and start it when a device is free")
    launch.add_argument("config", type=Path)
    launch.set_defaults(func=_jobs_launch)
    follow = actions.add_parser("follow", help="print a job's log until it ends")
    follow.add_argument("id", type=int)
    follow.add_argument("--poll", type=float, default=1.0, help="seconds between checks")
    follow.set_defaults(func=_jobs_follow)
    cancel = actions.add_parser("cancel", help="stop a job (SIGTERM, then SIGKILL)")
    cancel.add_argument("id", type=int)
    cancel.set_defaults(func=_jobs_cancel)

    zoo = subparsers.add_parser("zoo", help="rebuild the shipped checkpoints: phantom data, patch + image training, test AUC")
    zoo.add_argument("--config", type=Path, help="JSON file of these settings (e.g. configs/zoo.json); other options ignored")
    zoo.add_argument("--out", type=Path, default=Path("checkpoints"), help="where <model>.safetensors/.json go")
    zoo.add_argument("--phantom-dir", type=Path, default=Path("data/phantom"), help="phantom data set (made if absent)")
    zoo.add_argument("--n-images", type=int, default=600)
    zoo.add_argument("--image-size", default="1664x1280", help="HxW of the image stage (and of the patch source)")
    zoo.add_argument("--patch-size", type=int, default=256)
    zoo.add_argument("--epochs-patch", type=int, default=10)
    zoo.add_argument("--epochs-image", type=int, default=10)
    zoo.add_argument("--batch-patch", type=int, default=64)
    zoo.add_argument("--batch-image", type=int, default=16)
    zoo.add_argument("--micro-batch", type=int, help="gradient-accumulation unit (default: whole batch)")
    zoo.add_argument("--lr-patch", type=float, default=6e-4)
    zoo.add_argument("--lr-image", type=float, default=2e-4)
    zoo.add_argument("--optimizer", choices=("adam", "asam"), default="adam")
    zoo.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    zoo.add_argument("--models", nargs="+", default=["all"], help="model names or 'all'")
    zoo.add_argument("--time-budget-s", type=float, help="seconds per model (patch + image stage)")
    zoo.add_argument("--seed", type=int, default=0)
    zoo.add_argument("--workers", type=int, default=4, help="processes for phantom generation and decoding")
    zoo.add_argument("--runs-dir", type=Path, help="training runs folder (default: <phantom-dir>/runs)")
    zoo.set_defaults(func=_zoo)
