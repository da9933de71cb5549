"""Labelled records and the data sets they come from: records in manifests, built-in samples, splits,
the public data sets' adapters (CBIS-DDSM, VinDr-Mammo, CMMD, OPTIMAM), their check and report, the
DICOM index, four-view exams, image sampling, and the folders a shared server may read (data roots)."""
