"""The hospital's PACS over DICOMweb: its configuration (:mod:`hct.data.pacs.config`) and the client that
searches, retrieves into memory and stores (:mod:`hct.data.pacs.client`).

The names below are imported from their modules on first use (``hct.lazy``)."""

from hct.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "hct.data.pacs.client": ("InstanceRef", "Pacs", "PacsError", "Retrieved", "StudyQuery", "StudyRow"),
        "hct.data.pacs.config": ("PacsConfig", "pacs_config"),
    },
)
