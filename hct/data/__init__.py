"""Mammograms in, model inputs and labelled records out: reading, preprocessing, data sets.

The names below are imported from their modules on first use (``hct.lazy``)."""

from hct.lazy import lazy_exports

lazy_exports(__name__, {
    "hct.data.adapters": ("ADAPTERS", "Adapter", "ScanOptions"),
    "hct.data.breast": ("breast_mask", "breast_side", "infer_laterality"),
    "hct.data.cache": ("PreprocessedFiles", "load_preprocessed"),
    "hct.data.cbis_ddsm": ("scan_cbis_ddsm",),
    "hct.data.check": ("check_data", "write_checked_manifest"),
    "hct.data.cmmd": ("scan_cmmd",),
    "hct.data.exams": ("FOUR_VIEWS", "breast_scores", "complete_exams", "exam_label", "study_key", "view_name"),
    "hct.data.dicom_index": ("DicomIndex", "index_dicoms"),
    "hct.data.manifest": ("make_record", "read_manifest", "write_manifest"),
    "hct.data.options": ("FORMATS", "MODES"),
    "hct.data.optimam": ("ClinicalEvent", "label_exam", "read_optimam"),
    "hct.data.phantom": ("generate_phantom",),
    "hct.data.preprocess": ("FULL_SIZE", "HALF_SIZE", "Preprocessed", "parse_size", "preprocess", "preprocessing_info"),
    "hct.data.reading": ("MAX_PIXELS", "Mammogram", "MammogramMeta", "read_mammogram"),
    "hct.data.records": ("FINDING_TYPES", "LATERALITIES", "SPLITS", "VIEWS", "Box", "ImageRecord", "box_size"),
    "hct.data.report": ("DataReport",),
    "hct.data.samples": ("builtin_samples",),
    "hct.data.sampling": ("SUBSETS", "sample_images", "seeded_order", "subset_laterality"),
    "hct.data.sources": ("load_records",),
    "hct.data.splits": ("assign_splits", "complete_splits"),
    "hct.data.vindr": ("scan_vindr_mammo",),
})
