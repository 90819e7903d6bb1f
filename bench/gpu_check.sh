#!/usr/bin/env bash
# GPU check: everything a session lent a CUDA card runs, in ONE device call of under 9 minutes.
#
# Before the call (on the development machine, from the repo root; .whl/ is git-ignored), fetch
# the wheels the GPU machine lacks (it has python 3.12, torch, torchvision, timm, numpy, pandas,
# sklearn, pillow, safetensors, pyyaml; no open_clip, ftfy, wcwidth, regex, pytorch-metric-learning; pytest and
# its small dependencies come along in case the machine lacks them):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl open_clip_torch==3.3.0 ftfy wcwidth regex pytorch-metric-learning pytest pluggy iniconfig pygments packaging
# then run this script with .whl carried along:  bash bench/gpu_check.sh   (OUT=folder for the results).
#
# It installs the wheels, prints the card, runs the tests marked `gpu`, then the GPU benchmarks
# with short settings, each under its own `timeout` and a shared deadline (GPU_CHECK_BUDGET_S,
# default 480 s from the start), so one slow step cannot eat the budget: a step that would start
# too late is skipped and listed. Every benchmark writes OUT/<benchmark>[-<setting>].json, logs go
# to OUT/logs/, and OUT/summary.json combines them. Only core/ and bench/ run there (no dashboard).
#
# Afterwards, on the development machine, fold the fetched OUT folder into bench/RESULTS.md's GPU
# section (named after the card; the CPU section is kept):
#   mkdir -p D && tar xzf PATH/TO/OUT/gpu_check.tgz -C D && .venv/bin/python -m bench.results --merge-gpu D
set -u
cd "$(dirname "$0")/.."
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-480}
OUT=${OUT:-$(mktemp -d /tmp/gpu-check.XXXXXX)}
mkdir -p "$OUT/logs"
SKIPPED=()
FAILED=()

if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || echo "warning: installing .whl/*.whl failed"
else
  echo "warning: no wheels in .whl/ (see the header for the download command)"
fi
export PYTHONPATH=/tmp/site:$PWD

# step NAME NEEDS LIMIT COMMAND...: run COMMAND under `timeout` LIMIT seconds, cut to the time left before
# the deadline; skipped when less than NEEDS seconds are left.
step() {
  local name=$1 needs=$2 limit=$3
  shift 3
  local left=$((BUDGET - ($(date +%s) - START)))
  if ((left < needs)); then
    SKIPPED+=("$name")
    echo "== $name: skipped ($left s left)"
    return
  fi
  ((limit > left)) && limit=$left
  echo "== $name (limit ${limit} s, $(($(date +%s) - START)) s elapsed)"
  timeout --kill-after=10 "$limit" "$@" >"$OUT/logs/$name.log" 2>&1
  report "$name" $?
}

report() {
  if (($2 != 0)); then
    FAILED+=("$1 (exit $2)")
    tail -n 15 "$OUT/logs/$1.log"
  else
    tail -n 3 "$OUT/logs/$1.log"
  fi
}

# The 1600x1200 photos render on every core while the tests run (nothing is timed meanwhile).
timeout 150 python3 -m bench.photos >"$OUT/logs/photos.log" 2>&1 &
PHOTOS=$!

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || echo "warning: nvidia-smi failed"
python3 -c "import torch, torchvision, open_clip, pytorch_metric_learning; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')" \
  || echo "warning: an import failed; the steps below will say which"
python3 -m bench.results --machine >"$OUT/machine.json" 2>"$OUT/logs/machine.log" || echo "warning: machine info failed"

step pytest-gpu 25 120 python3 -m pytest -m gpu -q --continue-on-collection-errors tests/core tests/bench tests/test_sync_counter.py
echo "== photos (waiting, $(($(date +%s) - START)) s elapsed)"
wait $PHOTOS
report photos $?

# The full step uses the Stage 1 preset (CE), the same loss as the bare loop, so the ratio is the
# cost of the data path (cache on the device, sampler, augmentation) and the BNNeck head alone.
TT="python3 -m bench.train_throughput --backbone ViT-B-16 --image-size 224 --steps 10 --repeats 2 --config configs/stage1_vitb16_11k.yaml"
# The whole step compiled (train.compile: step, CUDA graphs) at the recipe's batch 64: Stage 1 (CE) and
# Stage 2 (CE + triplet + centre, PK 16 x 4); the targets are 95% of the bare compiled model and 3,000 images/s.
TT2="python3 -m bench.train_throughput --backbone ViT-B-16 --image-size 224 --steps 10 --repeats 2 --config configs/stage2_ce_triplet_center.yaml"
step tt-b64-step 90 150 $TT --batch-size 64 --compile step --out "$OUT/train_throughput-b64-step.json"
step tt-b64-step-stage2 90 150 $TT2 --batch-size 64 --compile step --out "$OUT/train_throughput-b64-step-stage2.json"
step tt-b256-eager 25 75 $TT --batch-size 256 --out "$OUT/train_throughput-b256-eager.json"
step tt-b64-eager 25 60 $TT --batch-size 64 --out "$OUT/train_throughput-b64-eager.json"
step pipeline 25 80 python3 -m bench.pipeline_vs_reference --backbone ViT-B-16 --image-size 224 --quick \
  --out "$OUT/pipeline_vs_reference.json"
step time-to-result 25 100 python3 -m bench.time_to_result --epochs "${TTR_EPOCHS:-20}" --repeats 1 \
  --out "$OUT/time_to_result.json"
step embed 25 45 python3 -m bench.embed_throughput --backbone ViT-B-16 --image-size 224 --images 4096 --batch-size 512 \
  --repeats 3 --out "$OUT/embed_throughput.json"
step tt-b256-compiled 90 180 $TT --batch-size 256 --compile --out "$OUT/train_throughput-b256-compiled.json"
step metrics 25 45 sh -c "python3 -m bench.bench_metrics --json > '$OUT/bench_metrics.json'"

echo "== summary ($(($(date +%s) - START)) s elapsed)"
python3 -m bench.results --summary "$OUT" || echo "warning: summary failed"
((${#SKIPPED[@]})) && echo "skipped: ${SKIPPED[*]}"
((${#FAILED[@]})) && echo "failed: ${FAILED[*]}"
# The device tool returns at most 8 files from $OUT: pack everything into one archive beside the summary.
tar czf /tmp/gpu_check.tgz -C "$OUT" . && find "$OUT" -mindepth 1 -delete && mv /tmp/gpu_check.tgz "$OUT/" \
  && python3 -c "import tarfile,sys; tarfile.open('$OUT/gpu_check.tgz').extract('./summary.json', '$OUT')" 2>/dev/null
echo "results in $OUT/gpu_check.tgz; fold them in with: mkdir -p D && tar xzf gpu_check.tgz -C D && .venv/bin/python -m bench.results --merge-gpu D"
exit 0
