"""One mammogram: reading DICOM/PNG/TIFF safely, the breast and its laterality, preprocessing into a model
input (and back), the preprocessed-file cache, images held in memory, and writing a mammogram as DICOM."""
