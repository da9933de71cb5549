"""The PACS round trip against a real Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``, as the tests start
it): search, retrieve a four-view exam into memory, write its results as DICOM (Secondary Captures, Parametric
Maps, the TID 1500 report), store them; seconds per step (median of ``--repeats``) and bytes per kind.

    python bench/pacs.py --repeats 3 --size 416x320
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.orthanc: the tests' Orthanc, started the same way

from hct.data import parse_size, preprocess, read_mammogram  # noqa: E402
from hct.data.image.dicom_write import write_dataset  # noqa: E402
from hct.data.pacs import Pacs, PacsConfig, StudyQuery  # noqa: E402
from hct.explain import attribute  # noqa: E402
from hct.explain.display.dicom_results import Producer, result_objects, view_result  # noqa: E402
from hct.explain.display.overlays import overlay_picture  # noqa: E402
from hct.explain.display.readable import readable  # noqa: E402
from hct.models.checkpoints import load_model  # noqa: E402
from tests.orthanc import exam_files, running_orthanc  # noqa: E402


def round_trip(pacs: Pacs, model, size: tuple[int, int]) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds of each step and bytes of each kind of object, for the malignant sample exam."""
    seconds, start = {}, time.perf_counter()
    (row,) = pacs.search(StudyQuery(patient_id="HCT-sfm-malign-0"))
    seconds["search"], start = time.perf_counter() - start, time.perf_counter()
    retrieved = pacs.retrieve(row.study_uid)
    seconds["retrieve 4 views"], start = time.perf_counter() - start, time.perf_counter()
    views = []
    for ref, data in retrieved.instances:
        image = read_mammogram(data)
        pre = preprocess(image, size)
        result = attribute(model, pre.tensor, "saliency")
        shown = readable(result.heatmap)
        overlay = overlay_picture(image.pixels, pre, shown, long_side=None)
        views.append(
            view_result(data, ref.laterality, ref.view, pre, result.heatmap, result.probability, shown.region, overlay)
        )
    seconds["explain 4 views"], start = time.perf_counter() - start, time.perf_counter()
    objects = result_objects(views, Producer(model.ref, "saliency"))
    sizes: dict[str, int] = {}
    for ds in objects:
        sizes[ds.SOPClassUID.name] = sizes.get(ds.SOPClassUID.name, 0) + len(write_dataset(ds))
    seconds[f"write {len(objects)} objects"], start = time.perf_counter() - start, time.perf_counter()
    pacs.store(objects)
    seconds[f"store {len(objects)} objects"] = time.perf_counter() - start
    return seconds, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", default="416x320", help="model input size of the explanation (HxW)")
    args = parser.parse_args()
    model, _ = load_model(ROOT / "checkpoints" / "hct_performer_relu.safetensors")
    runs = []
    with tempfile.TemporaryDirectory() as folder, running_orthanc(Path(folder)) as server:
        for files in exam_files().values():
            for _, data in files:
                server.upload(data)
        pacs = Pacs(PacsConfig(url=server.dicomweb, username=server.user, password=server.password, timeout=60))
        for _ in range(args.repeats):
            runs.append(round_trip(pacs, model, parse_size(args.size)))
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"HCT Performer-RELU saliency at {args.size}; median of {args.repeats}"
    )
    print("| step | seconds |\n|---|---|")
    for step in runs[0][0]:
        print(f"| {step} | {statistics.median(r[0][step] for r in runs):.2f} |")
    print("\n| object kind (4 views) | MiB |\n|---|---|")
    for kind, size in runs[0][1].items():
        print(f"| {kind} | {size / 2**20:.1f} |")


if __name__ == "__main__":
    main()
