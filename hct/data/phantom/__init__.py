"""The benchmark phantom: synthetic mammograms with findings of known type and size, rendered and written
as a manifest data set."""
