"""The data layer's choices that the command line and the app offer (light: building a parser imports
nothing heavy): data set formats, preprocessing modes, the phantom benchmark's splits and compressions."""

FORMATS = (
    "cbis-ddsm",
    "vindr",
    "cmmd",
    "optimam",
    "manifest",
)  # hct.data.sets.adapters' names (a test keeps them equal)
MODES = (
    "canonical",
    "acquired",
    "nyu_gmic",
)  # hct.data.preprocess: flipped and cropped, as acquired, or NYU GMIC's window
# Images per split of the phantom benchmark. Train and validation as large as the shipped models' training
# needs; the test split holds >= 100 malignant images of each finding type and of each size threshold, and
# >= 1,000 with no finding.
BENCHMARK_SPLITS = {"train": 2400, "val": 400, "test": 2000}
COMPRESSIONS = ("rle", "none")  # of the phantom's DICOM pixel data
