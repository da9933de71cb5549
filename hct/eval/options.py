"""The evaluation layer's choices that the command line offers (light: building a parser imports nothing heavy)."""

SIZE_THRESHOLDS = (100, 150, 200, 250, 300, 350, 400)  # finding-size thresholds (pixels), as in the paper
