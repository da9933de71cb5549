"""Explanations made visible: readable maps, overlays on the image as acquired, figures, the ERF run's
output files, and DICOM objects (Secondary Capture, Parametric Map, Structured Report)."""
