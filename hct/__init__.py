"""HCT Explorer: high-resolution mammography models (GMIC, Def-GMIC, HCT) and their explanations."""

__version__ = "0.1.0"
