"""``python -m hct models``: the registered architectures and the checkpoints found."""

from __future__ import annotations

import argparse
from pathlib import Path

from hct.models.registry import count_parameters, create_model, display_name, list_models


def _list(args: argparse.Namespace) -> int:
    from hct.weights import find_checkpoints, read_card

    print(f"{'model':<24}{'name':<26}{'params (M)':>11}  {'mixer':<18}{'output stride':>13}")
    for name in list_models():
        model = create_model(name)
        print(f"{name:<24}{display_name(name):<26}{count_parameters(model) / 1e6:>11.3f}  "
              f"{model.config.mixer:<18}{model.output_stride:>13}")
    checkpoints = find_checkpoints(args.checkpoints)
    print(f"\ncheckpoints in {args.checkpoints}: {len(checkpoints) or 'none'}")
    for path in checkpoints:
        card = read_card(path)
        auc = card.metrics.get("test_auc")
        auc_text = f"  test AUC {auc:.3f}" if isinstance(auc, (int, float)) else ""
        size = "x".join(map(str, card.input_size)) if card.input_size else "?"
        print(f"  {path.name:<40}{card.architecture:<24}{card.parameters / 1e6:.3f} M  {size}{auc_text}")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from hct.weights import CHECKPOINT_DIR

    parser = subparsers.add_parser("models", help="list the models and the checkpoints found")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINT_DIR, help="folder of checkpoints")
    parser.set_defaults(func=_list)
