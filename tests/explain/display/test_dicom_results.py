"""An exam's results as DICOM (highdicom): each kind in a new series of the source study, referencing the
source images, the outline in the source's pixels; what cannot be written is a clear error."""

import numpy as np
import pytest
from pydicom.uid import generate_uid

from hct.data import preprocess
from hct.data.image.dicom_write import mammogram_dataset
from hct.errors import ConfigError
from hct.explain.display.dicom_results import Producer, ViewResult, outline_polygon, result_objects
from hct.models.ref import ModelRef

PRODUCER = Producer(
    ModelRef.of("hct_performer_relu", "HCT (Performer-RELU) — hct_performer_relu", "ab" * 32), "Grad-CAM at stages.4"
)


def view(laterality: str, name: str, study: str, shape=(64, 48), outline=None) -> ViewResult:
    source = mammogram_dataset(
        np.zeros(shape, np.uint16),
        StudyInstanceUID=study,
        SeriesInstanceUID=generate_uid(),
        PatientID="P1",
        PatientName="Doe^Jane",
        ImageLaterality=laterality,
        ViewPosition=name,
    )
    heat = np.random.default_rng(0).random(shape, dtype=np.float32)
    return ViewResult(
        source, laterality, name, 0.25 if laterality == "R" else 0.75, heat, np.zeros((*shape, 3), np.uint8), outline
    )


def test_each_kind_is_a_new_series_of_the_source_study():
    study = generate_uid()
    views = [
        view("R", "CC", study),
        view("L", "CC", study, outline=np.array([[1, 1], [9, 1], [9, 9], [1, 1]], np.float32)),
    ]
    objects = result_objects(views, PRODUCER)
    assert [o.SOPClassUID.name for o in objects] == [
        "Secondary Capture Image Storage",
        "Parametric Map Storage",
    ] * 2 + ["Comprehensive 3D SR Storage"]
    assert {o.StudyInstanceUID for o in objects} == {study} and len({o.SeriesInstanceUID for o in objects}) == 3
    assert all(o.Manufacturer == "HCT Explorer" and o.PatientID == "P1" for o in objects)
    assert objects[0].SourceImageSequence[0].ReferencedSOPInstanceUID == views[0].source.SOPInstanceUID
    values = np.frombuffer(objects[1].FloatPixelData, np.float32).reshape(64, 48)
    np.testing.assert_array_equal(values, views[0].heatmap)
    assert objects[1].ManufacturerModelName == PRODUCER.model[:64] and objects[1].DeviceSerialNumber == "ab" * 32
    only = result_objects(views[:1], PRODUCER, ["report"])
    assert len(only) == 1 and only[0].Modality == "SR"


def test_what_cannot_be_written_is_named():
    with pytest.raises(ConfigError, match="more than one study"):
        result_objects([view("R", "CC", generate_uid()), view("L", "CC", generate_uid())], PRODUCER)
    wrong = view("R", "CC", generate_uid())
    wrong = ViewResult(wrong.source, "R", "CC", 0.5, np.zeros((10, 10), np.float32))
    with pytest.raises(ConfigError, match="give the map on the source's grid"):
        result_objects([wrong], PRODUCER, ["map"])
    with pytest.raises(ConfigError, match="known: overlay, map, report"):
        result_objects([wrong], PRODUCER, ["mask"])


def test_the_outline_lies_in_the_source_pixels():
    image = np.zeros((400, 300), np.float32)
    image[100:300, 150:300] = 1.0  # a breast on the right: flipped in canonical mode
    pre = preprocess(image, (64, 48), "canonical", clear_background=False)
    region = np.zeros(pre.size, bool)
    region[20:40, 10:30] = True
    polygon = outline_polygon(region, pre)
    assert np.array_equal(polygon[0], polygon[-1])  # closed
    back = pre.to_original(region.astype(np.float32)) > 0.5
    rows, cols = np.nonzero(back)
    assert polygon[:, 1].min() == pytest.approx(rows.min(), abs=8) and polygon[:, 1].max() == pytest.approx(
        rows.max(), abs=8
    )
    assert polygon[:, 0].min() == pytest.approx(cols.min(), abs=8) and polygon[:, 0].max() == pytest.approx(
        cols.max(), abs=8
    )
    assert outline_polygon(None, pre) is None and outline_polygon(np.zeros(pre.size, bool), pre) is None
