#!/usr/bin/env bash
# Every GPU benchmark in one run, for a lent H100/H200: one script, so a short lease is enough.
#
#     bash bench/gpu.sh [RESULTS_FOLDER]      # default: $OUT, else ./gpu-results
#
# Each benchmark runs under its own time limit and writes its table to RESULTS_FOLDER/NAME.log;
# one that fails or runs out of time doesn't stop the others. Full-size architectures with
# random weights (nothing is downloaded). Copy the tables into docs/benchmarks.md.
set -u
out=${1:-${OUT:-gpu-results}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
python=${PYTHON:-python3}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; "$python" -c \
    'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'; } \
    >"$out/machine.txt" 2>&1
cat "$out/machine.txt"

bench() {  # NAME SECONDS MODULE ARGS...
    local name=$1 limit=$2
    shift 2
    echo "== $name ($limit s at most): python -m $*"
    local started=$SECONDS
    timeout --kill-after=5 "$limit" "$python" -m "$@" >"$out/$name.log" 2>&1
    echo "   exit $? after $((SECONDS - started)) s"
    tail -n 20 "$out/$name.log"
}

only=${ONLY:-executor static compiled batching chat reading}  # ONLY="chat reading": some
want() { [[ " $only " == *" $1 "* ]]; }

want executor && bench executor 120 bench.gpu_executor
# The launch-bound batch-1 latency's levers: a static KV cache, then CUDA graphs on top.
want static && bench static 130 bench.gpu_executor --static-cache
want compiled && bench compiled 220 bench.gpu_executor --compile
want batching && bench batching 130 bench.engine_batching --mode gpu
want chat && bench chat 230 bench.chat_fullsize --device cuda --no-blip2 --sizes 1,4,16 --detailed 200
want reading && bench reading 80 bench.reading --mode gpu
