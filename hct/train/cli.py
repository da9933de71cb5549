"""``python -m hct train | jobs | zoo``: train from a config, manage queued runs, rebuild the model zoo."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path


def _train(args: argparse.Namespace) -> int:
    from hct.train.heartbeat import Heartbeat
    from hct.train.jobs import write_status
    from hct.train.loop import train

    rank = int(os.environ.get("RANK", "0"))  # set by torchrun
    heartbeat = Heartbeat(args.status_file.parent, rank) if args.status_file else None
    try:
        result = train(args.config, progress=not args.no_progress, heartbeat=heartbeat)
    except BaseException as err:
        if args.status_file:
            heartbeat("failed", error=f"{type(err).__name__}: {err}")
            write_status(args.status_file, "failed", error=f"{type(err).__name__}: {err}")
        raise
    if args.status_file and rank == 0:
        write_status(args.status_file, "succeeded", checkpoint=str(result.best_checkpoint))
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def _store(args: argparse.Namespace):
    from hct.train.jobs import JobStore

    return JobStore(args.store)


def _jobs_list(args: argparse.Namespace) -> int:
    store = _store(args)
    store.schedule()
    print(f"{'id':>4}  {'state':<10} {'nproc':>5} {'devices':<16} {'created':<20} config")
    for job in store.list():
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created))
        print(
            f"{job.id:>4}  {job.state:<10} {job.nproc:>5} {job.gpu or '-':<16} {created:<20} {job.config.get('out_dir', '')}"
        )
        if job.state == "failed" and job.error:
            print("      " + job.error.strip().splitlines()[-1])
    return 0


def _jobs_launch(args: argparse.Namespace) -> int:
    from hct.train.config import load_config

    config = load_config(args.config)  # refuse a bad config before queueing it
    store = _store(args)
    job = store.submit(config.to_dict(), nproc=args.nproc)
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
    from hct.train.zoo import build_zoo
    from hct.train.zoo_config import ZooConfig, zoo_config_from_file

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(ZooConfig) if getattr(args, f.name) is not None}
    zoo = dataclasses.replace(zoo_config_from_file(args.config), **given) if args.config else ZooConfig(**given)
    summaries = build_zoo(zoo)
    for entry in summaries:
        print(json.dumps(entry))
    return 1 if any("error" in entry for entry in summaries) else 0


def _add_zoo_options(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`ZooConfig` field (default: the field's own), so the two cannot drift."""
    from hct.data.cli import split_counts_arg
    from hct.train.zoo_config import ZooConfig

    for f in dataclasses.fields(ZooConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "models":
            parser.add_argument(flag, nargs="+", help="model names or 'all' (default: all)")
        elif f.name == "splits":
            parser.add_argument(flag, type=split_counts_arg, help="images per split, e.g. train=2400,val=400,test=2000")
        else:
            kind = {"int": int, "float": float}.get(str(f.type).split(" |")[0], str)
            parser.add_argument(flag, type=kind, help=f"default: {f.default}")


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
    launch = actions.add_parser("launch", help="queue a training run and start it when its devices are free")
    launch.add_argument("--config", required=True, type=Path, help="JSON (or YAML) training config")
    launch.add_argument(
        "--nproc", type=int, default=1, help="processes (torchrun --nproc-per-node; each takes a device)"
    )
    launch.set_defaults(func=_jobs_launch)
    follow = actions.add_parser("follow", help="print a job's log until it ends")
    follow.add_argument("id", type=int)
    follow.add_argument("--poll", type=float, default=1.0, help="seconds between checks")
    follow.set_defaults(func=_jobs_follow)
    cancel = actions.add_parser("cancel", help="stop any job, whoever launched it (SIGTERM, then SIGKILL)")
    cancel.add_argument("id", type=int)
    cancel.set_defaults(func=_jobs_cancel)

    zoo = subparsers.add_parser(
        "zoo", help="rebuild the shipped checkpoints: phantom data, patch + image training, test AUC"
    )
    zoo.add_argument(
        "--config", type=Path, help="JSON file of these settings (e.g. configs/zoo.json); options given override it"
    )
    _add_zoo_options(zoo)
    zoo.set_defaults(func=_zoo)
