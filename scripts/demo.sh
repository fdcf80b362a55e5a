#!/usr/bin/env bash
# The main job on the embedded default: synthetic two-person interactions -> packed dataset ->
# stage 1 RQ-VAE tokenizer (train, then evaluate on the test split). Installs and builds first.
# Rerunning resumes or skips finished steps. VIMO_DEMO_CLIPS sets the dataset size (default 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
V=build/vimo
CLIPS="${VIMO_DEMO_CLIPS:-2000}"
step() { printf '\n\033[1m[demo] %s\033[0m\n' "$*"; }

step "1/4 synthetic interactions ($CLIPS clips) -> data/synthetic"
if [ -f data/synthetic/split/test.txt ]; then
  echo "data/synthetic exists; delete it to regenerate"
else
  $V data synth --out data/synthetic --clips "$CLIPS" --seed 1
fi

step "2/4 pack -> data/packed/synthetic/{train,val,test}.h5 + stats.safetensors"
$V data prepare --config configs/data/synthetic.yaml

step "3/4 train the RQ-VAE motion tokenizer -> runs/tok-demo (rerun to resume)"
$V tokenizer train --config configs/tokenizer/demo.yaml run.dir=runs/tok-demo data.packed=data/packed/synthetic

step "4/4 evaluate on the test split"
$V tokenizer eval --run runs/tok-demo --split test
echo
echo "Run directory: runs/tok-demo (config.yaml, log.txt, metrics.jsonl, tb/, checkpoints/, best/)"
echo "TensorBoard:   tensorboard --logdir runs"
