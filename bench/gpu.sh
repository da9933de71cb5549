#!/usr/bin/env bash
# The GPU session: train the shipped checkpoints (python -m hct zoo) and run the CUDA benchmarks.
# Written for the lent H100/H200 machine (no internet; missing pure-Python wheels carried in .whl/);
# results go to $OUT (or ./gpu-out). Each part has its own time limit so one failure costs no other.
# The device image lacks these pure-Python wheels; fetch them into .whl/ (git-ignored) beforehand with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl performer-pytorch local-attention hyper-connections \
#     torch-einops-utils axial-positional-embedding nystrom-attention pydicom captum plotly
# and carry .whl with the run.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" >> "$OUT/gpu.txt" 2>&1

# 1. The model zoo at 1664x1280 (half the paper's resolution), ~50 s of training per model (SKIP_ZOO=1 skips it).
[ -n "${SKIP_ZOO:-}" ] || timeout "${ZOO_LIMIT:-330}" python3 -m hct zoo --out "$OUT/zoo" --phantom-dir /tmp/phantom --n-images 600 \
    --image-size 1664x1280 --patch-size 256 --epochs-patch ${EPOCHS_PATCH:-8} --epochs-image ${EPOCHS_IMAGE:-12} --batch-patch 64 --batch-image 16 \
    --device cuda --models all --time-budget-s "${ZOO_BUDGET:-50}" --workers 16 > "$OUT/zoo.log" 2>&1
# two archives: what comes back from the device is at most 16 MB a file
[ -n "${SKIP_ZOO:-}" ] || { (cd "$OUT/zoo" && tar czf ../zoo_cnn.tgz gmic.* def_gmic.* && tar czf ../zoo_hct.tgz hct_*) && rm -rf "$OUT/zoo"; }

[ -n "${SKIP_BENCH:-}" ] && exit 0
# 2. Benchmarks on CUDA (SKIP_MODELS_BENCH=1 skips bench/models.py).
[ -n "${SKIP_MODELS_BENCH:-}" ] || {
    timeout 55 python3 bench/models.py --device cuda --tokens 1000 2000 4000 8000 16000
    timeout 40 python3 bench/models.py --device cuda --amp --tokens 1000
} > "$OUT/bench_models_cuda.md" 2>&1
timeout 100 python3 bench/erf.py --device cuda --n 100 --sizes 3328x2560 --repeats 1 > "$OUT/bench_erf_cuda.md" 2>&1
# Table 1 + A2 on the GPU (target: under 60 s): a phantom whose test split has 100 right and 100 left breasts.
timeout 120 python3 -m hct phantom --n 2000 --out /tmp/phantom_erf --workers 16 > "$OUT/phantom_erf.log" 2>&1
timeout 240 python3 bench/table1.py --data /tmp/phantom_erf --split test --n 100 --size 3328x2560 --device cuda \
    --workers 12 --models checkpoints/gmic.safetensors checkpoints/def_gmic.safetensors \
    checkpoints/hct_performer_relu.safetensors --out "$OUT/table1_cuda" > "$OUT/bench_table1_cuda.md" 2>&1
timeout 45 python3 bench/train.py --device cuda --steps 5 > "$OUT/bench_train_cuda.md" 2>&1
ls -la "$OUT"
