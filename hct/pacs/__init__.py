"""The hospital's PACS over DICOMweb: its configuration (:mod:`hct.pacs.config`) and the client that
searches, retrieves into memory and stores (:mod:`hct.pacs.client`)."""

from hct.pacs.client import InstanceRef, Pacs, PacsError, Retrieved, StudyQuery, StudyRow
from hct.pacs.config import PacsConfig, pacs_config

__all__ = ["InstanceRef", "Pacs", "PacsConfig", "PacsError", "Retrieved", "StudyQuery", "StudyRow", "pacs_config"]
