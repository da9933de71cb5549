#!/usr/bin/env bash
# The GPU session, one call on the lent H100/H200 (about 10 minutes): the phantom benchmark, the five
# shipped checkpoints with their test predictions (python -m hct zoo), then the CUDA benchmarks.
# Results go to $OUT (or ./gpu-out): at most 8 files come back, so logs are bundled into logs.tgz
# after every step (a step cut by its time limit still leaves the earlier ones).
# The device image lacks these pure-Python wheels; fetch them into .whl/ (git-ignored) beforehand with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl performer-pytorch==1.1.4 local-attention==1.11.2 \
#     nystrom-attention==0.0.14 captum==0.9.0 pydicom==3.0.2 plotly==7.1.0 axial-positional-embedding==0.3.12 \
#     hyper-connections==0.4.11 torch-einops-utils==0.2.0
# and carry .whl with the run.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT/logs"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
bundle() { tar czf "$OUT/logs.tgz" -C "$OUT" logs; }
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log, time it, bundle the logs
    local name=$1 limit=$2; shift 2
    local start=$(date +%s)
    timeout "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
    echo "$name: exit $? after $(( $(date +%s) - start )) s (limit $limit s)" | tee -a "$OUT/logs/steps.txt"
    bundle
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/logs/gpu.txt" 2>&1
python3 -c "import torch, os; print('torch', torch.__version__, torch.cuda.get_device_name(), 'cpus', os.cpu_count())" \
    >> "$OUT/logs/gpu.txt" 2>&1

# 1. The zoo: the benchmark phantom (uncompressed here: disk is plenty and RLE encoding needs a compiled
#    plugin; the pixels are the same), then the five models, the whole run within its total_budget_s.
#    SKIP_ZOO=1 runs only the benchmarks (with the shipped checkpoints), SKIP_BENCH=1 only the zoo: two
#    calls when one device allowance cannot hold both with room for a rerun.
if [ -z "${SKIP_ZOO:-}" ]; then
    step zoo "${ZOO_LIMIT:-470}" python3 -m hct zoo --config configs/zoo.json --out "$OUT/zoo" --phantom-dir /tmp/phantom \
        --compression none --device cuda ${ZOO_TOTAL:+--total-budget-s $ZOO_TOTAL}
    # two archives of checkpoints: what comes back is at most 16 MB a file
    (cd "$OUT/zoo" && tar czf ../zoo_cnn.tgz gmic.* def_gmic.* && tar czf ../zoo_hct.tgz hct_* predictions.csv) && mv "$OUT/zoo" /tmp/zoo
fi

[ -n "${SKIP_BENCH:-}" ] && exit 0
# 2. CUDA benchmarks, each with its own limit.
step bench_erf 60 python3 bench/erf.py --device cuda --n 100 --sizes 3328x2560 --repeats 1
# Table 1 + A2 (target: under 60 s) on the phantom test split, with the zoo's checkpoints (else the shipped ones).
MODELS=/tmp/zoo; [ -f "$MODELS/gmic.safetensors" ] || MODELS=checkpoints
[ -f /tmp/phantom/manifest.csv ] || python3 -m hct phantom --splits train=0,val=0,test=400 --out /tmp/phantom --workers 16
step bench_table1 150 python3 bench/table1.py --data /tmp/phantom --split test --n 100 --size 3328x2560 \
    --device cuda --workers 12 --models "$MODELS"/gmic.safetensors "$MODELS"/def_gmic.safetensors \
    "$MODELS"/hct_performer_relu.safetensors --out /tmp/table1_cuda
step bench_train 30 python3 bench/train.py --device cuda --steps 5
step bench_predict 60 python3 bench/predict.py --device cuda --n 64 --sizes 1664x1280 3328x2560 --workers 0 8
ls -la "$OUT"
