"""A model's results on an exam as DICOM objects for the hospital's PACS, written with highdicom:

- each view's overlay as a Secondary Capture (:func:`hct.explain.display.export.capture_dataset`), JPEG-LS
  lossless (a sixth of its raw size on a CBIS-DDSM view);
- each view's map as a Parametric Map: float values on the source image's grid, referencing it;
- the model's output as a TID 1500 measurement report (Comprehensive 3D SR): the probability of
  cancer per view (with the top-mass outline as its region on the source image) and per breast,
  the model's name and checkpoint sha256 as the algorithm identification.

Each kind goes into the source study in its own new series; each names what made it (manufacturer
``HCT Explorer``, the model as the model name, the hct version as software). They carry the source's
patient and study, as every object of a study does: they are for the PACS, not for sharing.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.uid import JPEGLSLossless, generate_uid

from hct.data.image.preprocess import Preprocessed
from hct.data.sets.exams import breast_scores
from hct.errors import ConfigError
from hct.explain.display.export import MANUFACTURER, PATIENT_STUDY_KEYWORDS, capture_dataset, software_version
from hct.models.ref import ModelRef

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

SERIES_NUMBERS = {"overlay": 9701, "map": 9702, "report": 9703}  # new series of the source study
KINDS = tuple(SERIES_NUMBERS)


@dataclass(frozen=True)
class Producer:
    """What made the results: the model (its label and checkpoint sha256) and the map's method."""

    ref: ModelRef
    method: str

    @property
    def model(self) -> str:
        return self.ref.label

    @property
    def version(self) -> str:
        return self.ref.checkpoint_sha256 or "random initialisation"


@dataclass(frozen=True)
class ViewResult:
    """One view's result: its source header, probability, map on the source grid, overlay picture
    (``uint8 (H, W, 3)`` at the source's size) and top-mass outline (``(N, 2)`` columns, rows; or None)."""

    source: Dataset
    laterality: str
    view: str
    probability: float
    heatmap: np.ndarray
    overlay: np.ndarray | None = None
    outline: np.ndarray | None = None


def outline_polygon(region: np.ndarray | None, pre: Preprocessed) -> np.ndarray | None:
    """The longest contour of a model-resolution ``region`` as a closed polygon of (column, row) points
    in the original image's pixels; None without a region."""
    import contourpy

    if region is None or not region.any():
        return None
    padded = np.pad(region.astype(np.float32), 1)
    lines = contourpy.contour_generator(z=padded).lines(0.5)
    points = max(lines, key=len) - 1.0  # (x, y) in model pixels
    scale_r, scale_c = pre.scale
    cols = points[:, 0] / scale_c + pre.crop_box[1]
    rows = points[:, 1] / scale_r + pre.crop_box[0]
    if pre.flipped:
        cols = pre.original_shape[1] - cols
    rows = np.clip(rows, 0, pre.original_shape[0] - 1)
    cols = np.clip(cols, 0, pre.original_shape[1] - 1)
    polygon = np.stack([cols, rows], axis=1).astype(np.float32)
    return polygon if np.array_equal(polygon[0], polygon[-1]) else np.vstack([polygon, polygon[:1]])


def parametric_map(result: ViewResult, producer: Producer, series_uid: str, instance_number: int) -> Dataset:
    """The view's map as a float Parametric Map on the source image's grid, referencing the source."""
    heat = np.ascontiguousarray(result.heatmap, dtype=np.float32)
    if heat.shape != (result.source.Rows, result.source.Columns):
        raise ConfigError(
            f"the map is {heat.shape}, the source image {result.source.Rows}x{result.source.Columns}: "
            "give the map on the source's grid"
        )
    low, high = float(heat.min()), float(heat.max())
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=producer.method[:16],
        lut_explanation=f"{producer.method} of {producer.model}"[:64],
        unit=hd.sr.CodedConcept("1", "UCUM", "no units"),
        value_range=(low, high),
        slope=1,
        intercept=0,
    )
    window = hd.VOILUTTransformation(
        window_center=(low + high) / 2,
        window_width=max(high - low, 1e-6),
        window_explanation="the map's range",
        voi_lut_function="LINEAR_EXACT",
    )
    pm = hd.pm.ParametricMap(
        [_map_geometry(result.source)],
        heat,
        series_uid,
        SERIES_NUMBERS["map"],
        generate_uid(),
        instance_number,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=producer.model[:64],
        software_versions=software_version(),
        device_serial_number=producer.version[:64],
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[window],
        content_description=f"{producer.method} map"[:64],
        content_label="MAP",
    )
    pm.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: a model's label may hold any character
    pm.SeriesDescription = f"{MANUFACTURER} {producer.method} maps"[:64]
    pm.Laterality = result.laterality
    return pm


def _with_study(source: Dataset) -> Dataset:
    """The source's header with the patient and study attributes highdicom copies (type 2: present, maybe
    empty), added empty where the source lacks them."""
    if all(key in source for key in PATIENT_STUDY_KEYWORDS):
        return source
    header = source.copy()
    for key in PATIENT_STUDY_KEYWORDS:
        if key not in header:
            setattr(header, key, "")
    return header


def _map_geometry(source: Dataset) -> Dataset:
    """The source's header with a geometry the Parametric Map IOD requires (it mandates a frame of
    reference, which a mammogram for presentation has not): a new frame of reference of the map's own,
    the identity orientation at the origin and the source's pixel spacing (1 mm when it gives none).
    The map lies on the source's pixel grid; a viewer relates the two through the map's reference to
    the source image (Spatial Locations Preserved: YES), not through this frame."""
    header = _with_study(source)
    if "FrameOfReferenceUID" in header and "ImagePositionPatient" in header:
        return header
    header = header.copy()
    spacing = source.get("PixelSpacing") or source.get("ImagerPixelSpacing") or [1.0, 1.0]
    header.FrameOfReferenceUID, header.PositionReferenceIndicator = generate_uid(), ""
    header.ImageOrientationPatient, header.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0, 0, 0]
    header.PixelSpacing, header.SliceThickness = [float(v) for v in spacing], 1.0
    return header


_SIDES = {"L": codes.SCT.Left, "R": codes.SCT.Right}
_UNIT = hd.sr.CodedConcept("1", "UCUM", "no units")


def _probability(value: float, algorithm: hd.sr.AlgorithmIdentification) -> hd.sr.Measurement:
    return hd.sr.Measurement(name=codes.DCM.ProbabilityOfCancer, value=float(value), unit=_UNIT, algorithm_id=algorithm)


def _view_group(
    result: ViewResult, algorithm: hd.sr.AlgorithmIdentification, method: str
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations | hd.sr.MeasurementsAndQualitativeEvaluations:
    """One view's probability; its region is the top-mass outline on the source image (or, without one,
    the source image is referenced as a whole)."""
    reference = hd.sr.SourceImageForRegion(result.source.SOPClassUID, result.source.SOPInstanceUID)
    site = [hd.sr.FindingSite(codes.SCT.Breast, laterality=_SIDES[result.laterality])]
    tracking = hd.sr.TrackingIdentifier(
        identifier=f"{result.laterality}-{result.view or 'view'} {method}"[:64], uid=generate_uid()
    )
    measurements = [_probability(result.probability, algorithm)]
    if result.outline is None:
        image = hd.sr.SourceImageForMeasurementGroup(result.source.SOPClassUID, result.source.SOPInstanceUID)
        return hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking, algorithm_id=algorithm, finding_sites=site, measurements=measurements, source_images=[image]
        )
    region = hd.sr.ImageRegion(hd.sr.GraphicTypeValues.POLYLINE, result.outline, reference)
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking, referenced_region=region, algorithm_id=algorithm, finding_sites=site, measurements=measurements
    )


def measurement_report(results: Sequence[ViewResult], producer: Producer, series_uid: str) -> Dataset:
    """The TID 1500 measurement report of an exam's views: the probability of cancer per view (its region
    the top-mass outline of ``producer.method``'s map) and per breast (the mean over its views)."""
    algorithm = hd.sr.AlgorithmIdentification(
        name=producer.model[:64], version=producer.version[:64], parameters=[producer.method[:64]]
    )
    groups = [_view_group(r, algorithm, producer.method) for r in results]
    scores = breast_scores({(r.laterality, r.view): r.probability for r in results})
    for side, score in scores.items():
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                hd.sr.TrackingIdentifier(identifier=f"{side} breast", uid=generate_uid()),
                algorithm_id=algorithm,
                finding_sites=[hd.sr.FindingSite(codes.SCT.Breast, laterality=_SIDES[side])],
                measurements=[_probability(score, algorithm)],
            )
        )
    device = hd.sr.ObserverContext(
        codes.DCM.Device,
        hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=producer.model[:64], manufacturer_name=MANUFACTURER, model_name=producer.model[:64]
        ),
    )
    report = hd.sr.MeasurementReport(
        hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.SCT.Mammography,
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        [_with_study(r.source) for r in results],
        report,
        series_uid,
        SERIES_NUMBERS["report"],
        generate_uid(),
        1,
        manufacturer=MANUFACTURER,
        is_complete=True,
    )
    sr.SpecificCharacterSet = "ISO_IR 192"
    sr.SeriesDescription = f"{MANUFACTURER} {producer.model} report"[:64]
    sr.SoftwareVersions = software_version()
    return sr


def result_objects(results: Sequence[ViewResult], producer: Producer, kinds: Sequence[str] = KINDS) -> list[Dataset]:
    """The ``kinds`` of objects (``overlay``, ``map``, ``report``) of one view or an exam, each kind in a new
    series of the source study."""
    unknown = set(kinds) - set(KINDS)
    if unknown or not results:
        raise ConfigError(f"nothing to write: kinds {sorted(kinds)} (known: {', '.join(KINDS)}), {len(results)} views")
    if len({r.source.StudyInstanceUID for r in results}) != 1:
        raise ConfigError("the views come from more than one study; store each study's results apart")
    try:
        return _objects(results, producer, kinds)
    except (ValueError, TypeError, AttributeError, KeyError) as err:  # highdicom refuses what it cannot write
        raise ConfigError(f"the results cannot be written as DICOM ({type(err).__name__}: {err})") from err


def _objects(results: Sequence[ViewResult], producer: Producer, kinds: Sequence[str]) -> list[Dataset]:
    series = {kind: generate_uid() for kind in kinds}
    objects = []
    for i, r in enumerate(results, 1):
        if "overlay" in kinds and r.overlay is not None:
            spacing = r.source.get("PixelSpacing") or r.source.get("ImagerPixelSpacing")
            objects.append(
                capture_dataset(
                    r.overlay,
                    f"{MANUFACTURER} {producer.method} overlay",
                    study_uid=r.source.StudyInstanceUID,
                    series_uid=series["overlay"],
                    series_number=SERIES_NUMBERS["overlay"],
                    instance_number=i,
                    source=r.source,
                    pixel_spacing=tuple(float(v) for v in spacing) if spacing else None,
                    laterality=r.laterality,
                    view=r.view,
                    model=producer.model,
                    transfer_syntax=JPEGLSLossless,
                )
            )
        if "map" in kinds:
            objects.append(parametric_map(r, producer, series["map"], i))
    if "report" in kinds:
        objects.append(measurement_report(results, producer, series["report"]))
    return objects


def view_result(
    data: bytes,
    laterality: str,
    view: str,
    pre: Preprocessed,
    heatmap: np.ndarray,
    probability: float,
    region: np.ndarray | None = None,
    overlay: np.ndarray | None = None,
) -> ViewResult:
    """A view's result from its DICOM file bytes and what the model made of it: ``heatmap`` and the top-mass
    ``region`` at model resolution (``pre``'s), the overlay at the source's size."""
    import pydicom

    source = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return ViewResult(
        source, laterality, view, float(probability), pre.to_original(heatmap), overlay, outline_polygon(region, pre)
    )
