"""``from hct.checkpoints import load_model``: the one model loader, kept importable under its short name.

It lives in :mod:`hct.models.checkpoints`, with saving; the checkpoint's files are :mod:`hct.models.card`.
"""

from hct.models.checkpoints import load_model

__all__ = ["load_model"]
