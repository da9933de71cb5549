"""Mammograms in, model inputs and labelled records out: reading, preprocessing, data sets."""

from hct.data.breast import breast_mask, breast_side, infer_laterality
from hct.data.cache import PreprocessedFiles, load_preprocessed
from hct.data.cbis_ddsm import read_cbis_ddsm, scan_cbis_ddsm
from hct.data.check import FORMATS, check_data, write_checked_manifest
from hct.data.cmmd import read_cmmd, scan_cmmd
from hct.data.exams import FOUR_VIEWS, breast_scores, complete_exams, exam_label, study_key, view_name
from hct.data.datasets import MammogramDataset, PatchDataset, augment, make_loader
from hct.data.dicom_index import DicomIndex, index_dicoms
from hct.data.manifest import make_record, read_manifest, write_manifest
from hct.data.optimam import ClinicalEvent, label_exam, read_optimam
from hct.data.patches import Patch, extract_patch, sample_patches
from hct.data.phantom import generate_phantom
from hct.data.preprocess import FULL_SIZE, HALF_SIZE, MODES, Preprocessed, parse_size, preprocess, preprocessing_info
from hct.data.reading import MAX_PIXELS, Mammogram, MammogramMeta, read_mammogram
from hct.data.records import FINDING_TYPES, LATERALITIES, SPLITS, VIEWS, Box, ImageRecord, box_size
from hct.data.report import DataReport
from hct.data.samples import builtin_samples
from hct.data.sources import load_records
from hct.data.splits import assign_splits, complete_splits
from hct.data.vindr import read_vindr_mammo, scan_vindr_mammo

__all__ = [
    "FINDING_TYPES", "FORMATS", "FOUR_VIEWS", "FULL_SIZE", "HALF_SIZE", "LATERALITIES", "MAX_PIXELS", "MODES", "SPLITS", "VIEWS", "Box",
    "ClinicalEvent", "DataReport", "DicomIndex", "ImageRecord", "Mammogram", "MammogramDataset", "MammogramMeta",
    "Patch", "PatchDataset", "Preprocessed", "PreprocessedFiles", "assign_splits", "augment", "box_size", "breast_mask",
    "breast_scores", "breast_side", "builtin_samples", "check_data", "complete_exams", "complete_splits", "exam_label",
    "extract_patch", "generate_phantom", "index_dicoms",
    "infer_laterality", "label_exam", "load_preprocessed", "load_records", "make_loader", "make_record",
    "parse_size", "preprocess", "preprocessing_info", "read_cbis_ddsm", "read_cmmd", "read_mammogram", "read_manifest", "read_optimam",
    "read_vindr_mammo", "sample_patches", "scan_cbis_ddsm", "scan_cmmd", "scan_vindr_mammo", "study_key", "view_name",
    "write_checked_manifest", "write_manifest",
]
