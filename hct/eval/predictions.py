"""Predictions tables: one row per (model, image) with the image's label, findings and probability.

Columns (``PREDICTION_COLUMNS``): image_id, patient_id, laterality, view, label (1 malignant, 0 not),
finding_types (';'-joined), finding_size (float, NaN without a box), probability (of malignancy),
model, checkpoint_sha256. Optional columns: ``stage`` ("patch" or "image", for Table 3) and
``params_millions`` (the model's parameter count) and ``benign_probability`` (NYU's GMIC: its benign
``y_fusion``; ``probability`` is its malignant one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hct.data.records import ImageRecord
from hct.errors import EvaluationError, cancellable
from hct.io import atomic_write

if TYPE_CHECKING:  # torch is imported only when predicting
    import torch

    from hct.models.card import ModelCard
    from hct.models.ref import ModelRef
    from hct.runtime.distributed import DistContext

PREDICTION_COLUMNS = (
    "image_id",
    "patient_id",
    "laterality",
    "view",
    "label",
    "finding_types",
    "finding_size",
    "probability",
    "model",
    "checkpoint_sha256",
)
OPTIONAL_COLUMNS = ("stage", "params_millions", "benign_probability")  # the last: NYU's GMIC's benign y_fusion
STAGES = ("patch", "image")
_TEXT_COLUMNS = ("image_id", "patient_id", "laterality", "view", "finding_types", "model", "checkpoint_sha256", "stage")

Progress = Callable[[int, int], None]


def format_examples(values: Iterable[object], limit: int = 3) -> str:
    """The first ``limit`` values, quoted, for an error message."""
    return ", ".join(repr(v) for v in list(values)[:limit])


def validate_predictions(df: pd.DataFrame, source: str = "predictions", *, labelled: bool = True) -> pd.DataFrame:
    """A normalised copy of a predictions table, or EvaluationError saying what is wrong.

    ``labelled=False`` also accepts label -1 (unknown), e.g. for uploaded images.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise EvaluationError(
            f"{source} lacks the column(s) {', '.join(missing)}; a predictions table needs "
            f"{', '.join(PREDICTION_COLUMNS)} (write it with hct.eval.write_predictions or `python -m hct predict`)."
        )
    out = df.copy()
    for column in _TEXT_COLUMNS:
        if column in out.columns:
            out[column] = out[column].fillna("").astype(str)
    out["finding_size"] = pd.to_numeric(out["finding_size"], errors="coerce").astype(float)
    for column in ("params_millions", "benign_probability"):
        if column in out.columns:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)

    probability = pd.to_numeric(out["probability"], errors="coerce").astype(float)
    bad = ~np.isfinite(probability) | (probability < 0) | (probability > 1)
    if bad.any():
        raise EvaluationError(
            f"{source}: {int(bad.sum())} probabilities are missing, NaN or outside [0, 1] "
            f"(image_id {format_examples(out.loc[bad, 'image_id'])}); re-run the predictions for those images."
        )
    out["probability"] = probability

    label = pd.to_numeric(out["label"], errors="coerce")
    allowed = (0, 1, -1) if not labelled else (0, 1)
    bad = ~label.isin(allowed)
    if bad.any():
        raise EvaluationError(
            f"{source}: {int(bad.sum())} labels are not in {set(allowed)} "
            f"(image_id {format_examples(out.loc[bad, 'image_id'])}); "
            "use 1 for malignant and 0 for non-malignant images, and evaluate only labelled images."
        )
    out["label"] = label.astype(np.int64)

    if (out["model"] == "").any():
        raise EvaluationError(f"{source}: some rows have no model name; fill the 'model' column.")
    if "stage" in out.columns:
        bad = ~out["stage"].isin(STAGES)
        if bad.any():
            raise EvaluationError(
                f"{source}: stage must be one of {', '.join(STAGES)}, got {format_examples(out.loc[bad, 'stage'].unique())}."
            )
    keys = ["model", "stage", "image_id"] if "stage" in out.columns else ["model", "image_id"]
    duplicated = out.duplicated(keys, keep=False)
    if duplicated.any():
        raise EvaluationError(
            f"{source}: {int(out.loc[duplicated, 'image_id'].nunique())} image_id(s) appear more than once for one model "
            f"({format_examples(out.loc[duplicated, 'image_id'].unique())}); keep one prediction per image and model."
        )
    columns = list(PREDICTION_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in out.columns]
    return out[columns].reset_index(drop=True)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


def read_predictions(path: str | Path, *, labelled: bool = True) -> pd.DataFrame:
    """Read and validate a predictions table from CSV (or Parquet for a ``.parquet`` suffix)."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"predictions file {path} does not exist; write it with `python -m hct predict`.")
    try:
        if _is_parquet(path):
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(
                path, dtype={c: str for c in _TEXT_COLUMNS}, keep_default_na=False, na_values={"finding_size": [""]}
            )
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise EvaluationError(
            f"cannot read predictions file {path}: {err}; is it a CSV written by write_predictions?"
        ) from err
    return validate_predictions(df, str(path), labelled=labelled)


def write_predictions(df: pd.DataFrame, path: str | Path, *, labelled: bool = True) -> Path:
    """Validate and write a predictions table as CSV (or Parquet for a ``.parquet`` suffix)."""
    path = Path(path)
    df = validate_predictions(df, "predictions to write", labelled=labelled)
    path.parent.mkdir(parents=True, exist_ok=True)
    if _is_parquet(path):
        atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))
    else:
        atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
    return path


def card_preprocessing(card: ModelCard | None, default_mode: str = "canonical") -> dict[str, object]:
    """How a checkpoint's inputs are made, as :func:`predict`'s keywords ``mode`` and ``clear_background``:
    its card's ``preprocessing``, else ``default_mode`` (a model at random initialisation: its
    architecture's) with the background cleared (``hct.data.preprocess``'s default)."""
    recorded = card.preprocessing if card is not None else {}
    return {
        "mode": recorded.get("mode", default_mode),
        "clear_background": bool(recorded.get("clear_background", True)),
    }


def _check_batching(batch_size: int, workers: int) -> None:
    if batch_size < 1:
        raise EvaluationError(f"batch_size must be at least 1, got {batch_size}.")
    if workers < 0:
        raise EvaluationError(f"workers (decoding processes) must be 0 or more, got {workers}.")


class _Preprocessing:
    """``records[i]`` preprocessed (a map-style data set for ``torch.utils.data.DataLoader``)."""

    def __init__(self, records: Sequence[ImageRecord], size: tuple[int, int], mode: str, clear_background: bool):
        self.records, self.size, self.mode, self.clear_background = list(records), size, mode, clear_background

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> torch.Tensor:
        from hct.data import load_preprocessed

        record = self.records[index]
        return load_preprocessed(record.path, self.size, mode=self.mode, clear_background=self.clear_background).tensor


def batch_records(
    records: Sequence[ImageRecord],
    size: tuple[int, int],
    batch_size: int,
    *,
    mode: str = "canonical",
    clear_background: bool = True,
    workers: int = 0,
) -> Iterator[tuple[torch.Tensor, list[ImageRecord]]]:
    """``(images (B, 1, H, W), records)`` batches of ``records``, in order, preprocessed at ``size`` by
    ``hct.data.load_preprocessed`` with ``mode`` and ``clear_background``; ``workers`` processes decode
    ahead (a ``DataLoader``; 0: in this process)."""
    from torch.utils.data import DataLoader

    _check_batching(batch_size, workers)
    records = list(records)
    loader = DataLoader(
        _Preprocessing(records, size, mode, clear_background),
        batch_size=batch_size,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
    )
    for start, images in zip(range(0, len(records), batch_size), loader):
        yield images, records[start : start + batch_size]


def predict_batches(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, Sequence[ImageRecord]]],
    *,
    device: str = "cpu",
    ref: ModelRef | None = None,
    total: int | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run a two-logit classifier over ``(images, records)`` batches; probability = softmax(logits)[:, 1].
    NYU's GMIC: probability is its malignant ``y_fusion``, and ``benign_probability`` its benign one.
    Each row names the model by ``ref`` (default: the model's own, :func:`~hct.models.ref.ref_of`):
    its label and checkpoint sha256 ('' at random initialisation)."""
    import torch

    from hct.models.ref import ref_of
    from hct.models.scores import gives_probabilities, probabilities, scores_of

    ref = ref or ref_of(model)
    name, checkpoint_sha256 = ref.label, ref.checkpoint_sha256 or ""
    model = model.to(device).eval()
    rows: list[dict[str, object]] = []
    with torch.inference_mode():
        for images, batch in batches:
            scores = scores_of(model(images.to(device)))
            if scores.ndim != 2 or scores.shape[1] != 2 or scores.shape[0] != len(batch):
                raise EvaluationError(
                    f"the model returned scores of shape {tuple(scores.shape)} for {len(batch)} images; "
                    "predict needs a classifier with two outputs (not malignant, malignant)."
                )
            probs = probabilities(model, scores).cpu().numpy()
            for record, (other, malignant) in zip(batch, probs):
                rows.append(_row(record, float(malignant), name, checkpoint_sha256))
                if gives_probabilities(model):
                    rows[-1]["benign_probability"] = float(other)
            if progress is not None:
                progress(len(rows), total if total is not None else len(rows))
    extra = ["benign_probability"] if gives_probabilities(model) else []
    table = pd.DataFrame(rows, columns=[*PREDICTION_COLUMNS, *extra])
    table["params_millions"] = sum(p.numel() for p in model.parameters()) / 1e6  # for the Table 3 layout
    return table


def _row(record: ImageRecord, probability: float, model: str, checkpoint_sha256: str) -> dict[str, object]:
    return {
        "image_id": record.image_id,
        "patient_id": record.patient_id,
        "laterality": record.laterality,
        "view": record.view,
        "label": record.label,
        "finding_types": ";".join(record.finding_types),
        "finding_size": float("nan") if record.finding_size is None else float(record.finding_size),
        "probability": probability,
        "model": model,
        "checkpoint_sha256": checkpoint_sha256,
    }


def predict(
    model: torch.nn.Module,
    records: Sequence[ImageRecord],
    *,
    size: tuple[int, int],
    mode: str = "canonical",
    clear_background: bool = True,
    batch_size: int = 4,
    workers: int = 0,
    device: str = "cpu",
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    ref: ModelRef | None = None,
    context: DistContext | None = None,
) -> pd.DataFrame | None:
    """Predictions table of ``model`` over ``records`` preprocessed at ``size`` with ``mode`` and
    ``clear_background`` (a checkpoint's are :func:`card_preprocessing` of its card), ``workers``
    processes decoding ahead; rows name the model by ``ref`` (see :func:`predict_batches`).

    Under torchrun (``context`` of several ranks) the batches are dealt out in contiguous runs, one per
    rank in rank order, and rank 0 gathers the rows in record order: the table equals one process's,
    batch for batch (``None`` on the other ranks). ``progress`` counts this rank's images; ``cancel()``
    returning True stops after the batch under way (:class:`~hct.errors.ComputationCancelled`).
    """
    from hct.runtime.distributed import gather_to_main, round_ranges

    _check_batching(batch_size, workers)
    records = list(records)
    if context is not None and context.distributed:
        batches = round_ranges(0, -(-len(records) // batch_size), context.world)[context.rank]
        records = records[batches.start * batch_size : batches.stop * batch_size]
    table = predict_batches(
        model,
        batch_records(records, size, batch_size, mode=mode, clear_background=clear_background, workers=workers),
        device=device,
        ref=ref,
        total=len(records),
        progress=cancellable(
            progress, cancel, f"predictions of {(ref.label if ref else None) or type(model).__name__}"
        ),
    )
    if context is None or not context.distributed:
        return table
    tables = gather_to_main(context, table)
    return None if tables is None else pd.concat(tables, ignore_index=True)


def without_identity(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each ``patient_id`` replaced by its digest (one patient, one digest; the index's
    :func:`~hct.data.sets.dicom_index.subject_digest`), for a table that leaves the app."""
    from hct.data.sets.dicom_index import subject_digest

    if "patient_id" not in table.columns:
        return table
    return table.assign(patient_id=table["patient_id"].astype(str).map(subject_digest))
