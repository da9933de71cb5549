"""Effective receptive fields (paper Sec. 4): input gradients of the centre output (engine and cache),
ERFs over images, their maps and curves made comparable, metrics, Table 1 and receptive-field geometry."""
