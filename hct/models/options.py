"""The model layer's choices that the command line offers (light: building a parser imports nothing heavy)."""

OFFICIAL_MODELS = ("hct_performer_relu", "hct_performer_softmax")  # what import-official converts
