"""``python -m hct models`` (the registered architectures and the checkpoints found),
``python -m hct import-official`` (official HCT weights as a checkpoint) and
``python -m hct import-nyu-gmic`` (NYU's published GMIC weights as a checkpoint)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hct.models.card import CHECKPOINT_DIR
from hct.models.options import OFFICIAL_MODELS


def _list(args: argparse.Namespace) -> int:
    from hct.models.card import find_checkpoints
    from hct.models.registry import count_parameters, create_model, display_name, list_architectures

    print(f"{'model':<24}{'name':<26}{'parameters':>12}  {'mixer':<18}{'output stride':>13}")
    for name in list_architectures():
        model = create_model(name)
        print(
            f"{name:<24}{display_name(name):<26}{count_parameters(model):>12,}  "
            f"{model.config.mixer:<18}{model.output_stride:>13}"
        )
        if hasattr(model, "saliency_conv"):  # nyu_gmic: the global network alone, as their ds_net
            global_part = count_parameters(model.global_network) + count_parameters(model.saliency_conv)
            print(f"{'':<24}{'  global network':<26}{global_part:>12,}")
    checkpoints = find_checkpoints(args.checkpoints)
    print(f"\ncheckpoints in {args.checkpoints}: {len(checkpoints) or 'none'}")
    for line in checkpoint_lines(checkpoints):
        print(line)
    return 0


def checkpoint_lines(checkpoints: list[Path]) -> list[str]:
    """One line per checkpoint: file, architecture, parameters, input size and test AUC from its card."""
    from hct.models.card import read_card

    lines = []
    for path in checkpoints:
        card = read_card(path)
        auc = card.metrics.get("test_auc")
        auc_text = f"  test AUC {auc:.3f}" if isinstance(auc, (int, float)) else ""
        size = "x".join(map(str, card.input_size)) if card.input_size else "?"
        lines.append(f"  {path.name:<40}{card.architecture:<24}{card.parameters / 1e6:.3f} M  {size}{auc_text}")
    return lines


def _import_official(args: argparse.Namespace) -> int:
    from hct.models.card import checkpoint_paths
    from hct.models.official import import_official
    from hct.models.registry import model_config

    card = import_official(
        args.file, args.model, args.out, first_stage_stride=args.first_stage_stride, overwrite=args.overwrite
    )
    stages = model_config(card.architecture, **card.overrides).num_mixer_stages
    print(
        f"imported {args.file} as {card.architecture} ({stages} AC stages, {card.parameters:,} parameters, "
        f"overrides {card.overrides or 'none'})"
    )
    print(f"wrote {checkpoint_paths(args.out)[0]} and its card {checkpoint_paths(args.out)[1].name}")
    if card.training.get("warning"):
        print(f"warning: {card.training['warning']}", file=sys.stderr)
    return 0


def _import_nyu_gmic(args: argparse.Namespace) -> int:
    from hct.models.card import checkpoint_paths
    from hct.models.nyu_import import import_nyu_gmic

    card = import_nyu_gmic(args.file, args.index, args.out, overwrite=args.overwrite)
    print(
        f"imported {args.file} as nyu_gmic model {args.index} (percent_t {card.training['percent_t']}, "
        f"{card.parameters:,} parameters); its licence: {card.training['licence']}"
    )
    print(f"wrote {checkpoint_paths(args.out)[0]} and its card {checkpoint_paths(args.out)[1].name}")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the models and the checkpoints found")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINT_DIR, help="folder of checkpoints")
    parser.set_defaults(func=_list)

    parser = subparsers.add_parser(
        "import-official",
        help="convert a state dict saved by the official HCT code into a checkpoint",
        description="Convert torch.save(model.state_dict(), FILE) of the official HCT code (whiterabbit-ai/hct "
        "HCTBase) into a checkpoint with its model card. The file is read with weights_only=True.",
    )
    parser.add_argument("file", type=Path, help="the official state-dict file")
    parser.add_argument(
        "--model",
        required=True,
        choices=OFFICIAL_MODELS,
        help="the Performer kernel the weights were trained with (use_performer_RELU True or False)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="checkpoint to write, e.g. checkpoints/NAME.safetensors"
    )
    parser.add_argument(
        "--first-stage-stride",
        type=int,
        default=2,
        choices=(1, 2),
        help="the official first_layer_stride (not recorded in the file; default 2)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint at --out")
    parser.set_defaults(func=_import_official)

    parser = subparsers.add_parser(
        "import-nyu-gmic",
        help="convert one of NYU's published GMIC models (sample_model_N.p) into a checkpoint",
        description="Convert models/sample_model_N.p of nyukat/GMIC (a state dict of their GMIC) into a checkpoint "
        "with its model card (source sha256, model index, percent_t, origin and licence of the "
        "weights). The file is read with weights_only=True: nothing that needs code is loaded.",
    )
    parser.add_argument("file", type=Path, help="their sample_model_N.p")
    parser.add_argument(
        "--index",
        required=True,
        type=int,
        choices=range(1, 6),
        help="which of their five models the file is, 1..5 (sets percent_t as their PERCENT_T_DICT)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="checkpoint to write, e.g. checkpoints/nyu_gmic_1.safetensors"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint at --out")
    parser.set_defaults(func=_import_nyu_gmic)
