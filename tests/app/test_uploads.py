"""Uploads named by their view (NYU's ``0_L-CC.png``...) get laterality, view and one exam."""

import io

import numpy as np
from PIL import Image

from hct.data import complete_exams

from app import loaders, state


def _png(left: bool) -> bytes:
    pixels = np.zeros((64, 48), dtype=np.uint8)
    pixels[10:50, :20] = 200
    out = io.BytesIO()
    Image.fromarray(pixels if left else pixels[:, ::-1]).save(out, format="PNG")
    return out.getvalue()


def test_four_uploads_named_by_view_open_as_a_four_view_exam():
    names = ["0_L-CC.png", "0_R-CC.png", "0_L-MLO.png", "0_R-MLO.png"]
    items = [loaders.with_tags(state.upload_item(name, _png(left=name[2] == "L"))) for name in names]
    assert [(i.record.laterality, i.record.view) for i in items] == [
        ("L", "CC"),
        ("R", "CC"),
        ("L", "MLO"),
        ("R", "MLO"),
    ]
    exams = complete_exams(items, lambda item: item.record)
    assert len(exams) == 1 and [i.name for i in next(iter(exams.values()))] == [
        "0_R-CC.png",
        "0_L-CC.png",
        "0_R-MLO.png",
        "0_L-MLO.png",
    ]
    assert loaders.metadata_row(items[1])["view"] == "CC"
