"""The one record schema every data set adapter produces: one row per mammogram image."""

from __future__ import annotations

import math
from dataclasses import dataclass

FINDING_TYPES = ("mass", "calcifications", "architectural_distortion", "focal_asymmetry")
LATERALITIES = ("L", "R")
SIDE_NAMES = {"L": "left", "R": "right"}  # laterality -> the word used for ERF subsets and figures
VIEWS = ("CC", "MLO")
SPLITS = ("train", "val", "test")

# (row0, col0, row1, col1) in the original image's pixels, end-exclusive.
Box = tuple[int, int, int, int]


def box_size(box: Box) -> float:
    """A finding's size as in the paper: the square root of its bounding box area (pixels)."""
    row0, col0, row1, col1 = box
    return math.sqrt(max(row1 - row0, 0) * max(col1 - col0, 0))


@dataclass(frozen=True)
class ImageRecord:
    """One image of a data set.

    ``label`` is 1 for malignant, 0 for non-malignant and -1 when unknown (an upload, say).
    ``finding_size`` is the largest ``box_size`` of the image's finding boxes, ``None`` without boxes.
    ``finding_masks`` are the paths of binary masks outlining the findings (CBIS-DDSM's ROI masks),
    in the order of ``finding_boxes`` when the data set has both.
    """

    image_id: str
    path: str
    patient_id: str = ""
    exam_id: str = ""
    laterality: str = ""
    view: str = ""
    label: int = -1
    finding_types: tuple[str, ...] = ()
    finding_boxes: tuple[Box, ...] = ()
    finding_size: float | None = None
    split: str = ""
    finding_masks: tuple[str, ...] = ()
