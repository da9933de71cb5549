"""Mammograms in, model inputs and labelled records out: reading, preprocessing, data sets.

The names below are imported from their modules on first use (``hct.lazy``)."""

from hct.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "hct.data.sets.adapters": ("ADAPTERS", "Adapter", "ScanOptions"),
        "hct.data.image.breast": ("breast_mask", "breast_side", "infer_laterality"),
        "hct.data.image.cache": ("PreprocessedFiles", "load_preprocessed"),
        "hct.data.sets.cbis_ddsm": ("scan_cbis_ddsm",),
        "hct.data.sets.check": ("check_data", "write_checked_manifest"),
        "hct.data.sets.cmmd": ("scan_cmmd",),
        "hct.data.sets.exams": (
            "FOUR_VIEWS",
            "breast_scores",
            "complete_exams",
            "exam_label",
            "study_key",
            "view_name",
        ),
        "hct.data.sets.dicom_index": ("DicomIndex", "index_dicoms"),
        "hct.data.sets.manifest": ("make_record", "read_manifest", "write_manifest"),
        "hct.data.options": ("FORMATS", "MODES"),
        "hct.data.sets.optimam": ("ClinicalEvent", "label_exam", "read_optimam"),
        "hct.data.phantom.generate": ("generate_phantom",),
        "hct.data.image.preprocess": (
            "FULL_SIZE",
            "HALF_SIZE",
            "Preprocessed",
            "parse_size",
            "preprocess",
            "preprocessing_info",
        ),
        "hct.data.image.reading": ("MAX_PIXELS", "Mammogram", "MammogramMeta", "read_mammogram"),
        "hct.data.records": ("FINDING_TYPES", "LATERALITIES", "SPLITS", "VIEWS", "Box", "ImageRecord", "box_size"),
        "hct.data.sets.report": ("DataReport",),
        "hct.data.sets.samples": ("builtin_samples",),
        "hct.data.sets.sampling": ("SUBSETS", "sample_images", "seeded_order", "subset_laterality"),
        "hct.data.sets.sources": ("load_records",),
        "hct.data.sets.splits": ("assign_splits", "complete_splits"),
        "hct.data.sets.vindr": ("scan_vindr_mammo",),
    },
)
