"""One image, explained: :func:`explain` reads, preprocesses and attributes (or takes HCT attention) once,
and the :class:`Explanation` it returns draws the readable overlay on the image as acquired and writes it
(PNG, DICOM Secondary Capture, the arrays). ``python -m hct explain`` and the app's reading view both go
through it; a display change (opacity, readability, window/level) recomputes no map.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from hct.data.image.preprocess import Preprocessed, preprocess
from hct.data.image.reading import Mammogram, read_mammogram
from hct.explain.display.export import secondary_capture
from hct.explain.display.overlays import (
    DISPLAY_LONG_SIDE,
    overlay_picture,
    png_bytes,
    point_in_original,
    region_picture,
)
from hct.explain.display.readable import Readability, ReadableMap, model_pixel_spacing, readable


@dataclasses.dataclass(frozen=True, eq=False)
class Explanation:
    """A model-resolution ``heatmap`` of ``image`` (as acquired) through ``pre``, saying ``what`` it is, drawn
    with ``readability``; ``heatmap`` None draws the image alone. ``probability``: P(malignant) where the
    method gives it; ``query``: an attention map's query in model-input pixels; ``arrays``: what else
    :meth:`arrays_to_save` keeps."""

    image: Mammogram
    pre: Preprocessed
    heatmap: np.ndarray | None
    what: str
    readability: Readability = Readability()
    probability: float | None = None
    query: tuple[float, float] | None = None
    arrays: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @cached_property
    def shown(self) -> ReadableMap | None:
        """The heat map made readable, smoothing in millimetres where the image's pixel spacing is known."""
        if self.heatmap is None:
            return None
        return readable(
            self.heatmap, self.readability, model_pixel_spacing(self.image.meta.pixel_spacing, self.pre.scale)
        )

    def drawn_with(self, readability: Readability) -> Explanation:
        """The same map drawn with other ``readability`` (no map is recomputed)."""
        return self if readability == self.readability else dataclasses.replace(self, readability=readability)

    def marker(self, long_side: int | None = DISPLAY_LONG_SIDE) -> tuple[float, float] | None:
        """The attention query in the overlay's pixels, or None."""
        return None if self.query is None else point_in_original(self.pre, self.query, long_side)

    def overlay(
        self,
        opacity: float = 0.5,
        window: float | None = None,
        level: float | None = None,
        long_side: int | None = DISPLAY_LONG_SIDE,
        pixels: np.ndarray | None = None,
    ) -> np.ndarray:
        """The RGB picture at display resolution (``long_side``) or full resolution (``None``); ``pixels``:
        the image already at that resolution (the app keeps one), default the image itself."""
        return overlay_picture(
            self.image.pixels if pixels is None else pixels, self.pre, self.shown, opacity, window, level, long_side
        )

    def region(
        self,
        box: tuple[int, int, int, int],
        opacity: float = 0.5,
        window: float | None = None,
        level: float | None = None,
    ) -> np.ndarray:
        """The picture inside ``box`` (original pixels) at full resolution (a zoom)."""
        return region_picture(self.image.pixels, self.pre, self.shown, box, opacity, window, level)

    def png(self, opacity: float = 0.5, window: float | None = None, level: float | None = None) -> bytes:
        """The overlay at full resolution as PNG."""
        return png_bytes(self.overlay(opacity, window, level, long_side=None))

    def secondary_capture(
        self,
        description: str,
        opacity: float = 0.5,
        reference: dict[str, str] | None = None,
        window: float | None = None,
        level: float | None = None,
    ) -> bytes:
        """The overlay at full resolution as a DICOM Secondary Capture without patient identity
        (``reference``: the source's UIDs, to file it in the source's study)."""
        meta = self.image.meta
        return secondary_capture(
            self.overlay(opacity, window, level, long_side=None),
            description,
            reference,
            meta.pixel_spacing,
            meta.laterality,
        )

    def arrays_to_save(self) -> dict[str, np.ndarray]:
        """The map at model resolution and on the original image's grid, and the method's own arrays."""
        if self.heatmap is None:
            return {}
        return {"original": self.pre.to_original(self.heatmap), "heatmap": self.heatmap, **self.arrays}


def explain(
    model: torch.nn.Module,
    image: Mammogram | str | Path | bytes,
    method: str,
    size: tuple[int, int] = (1664, 1280),
    readability: Readability | None = None,
    *,
    query: tuple[float, float] | None = None,
    layer: str | None = None,
    clear_background: bool = True,
) -> Explanation:
    """``image`` (read when a path or bytes) explained by ``model`` at input ``size``: an attribution
    ``method`` (:data:`hct.explain.options.METHODS`; ``layer``: Grad-CAM's stage) or ``"attention"``
    (HCT; ``query`` in model-input pixels, default the centre; ``layer``: the attention layer), drawn with
    ``readability`` (default :class:`Readability`'s)."""
    from hct.explain.attention_maps import attention_map
    from hct.explain.attribution import attribute
    from hct.models.scores import input_mode

    readability = readability or Readability()
    image = image if isinstance(image, Mammogram) else read_mammogram(image)
    pre = preprocess(image, size, input_mode(model), clear_background=clear_background)
    if method == "attention":
        result = attention_map(model, pre.tensor, query or (pre.size[0] // 2, pre.size[1] // 2), layer=layer)
        return Explanation(
            image,
            pre,
            result.upsampled,
            f"attention of {result.layer} from {result.query}",
            readability,
            query=result.query_input,
            arrays={"heads": result.heads, "mean": result.mean, "query": np.array(result.query)},
        )
    result = attribute(model, pre.tensor, method, **({"layer": layer} if method == "gradcam" and layer else {}))
    what = f"{method}{' of ' + result.layer if result.layer else ''}"
    return Explanation(
        image,
        pre,
        result.heatmap,
        what,
        readability,
        result.probability,
        arrays={"probability": np.array(result.probability)},
    )
