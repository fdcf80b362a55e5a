#!/usr/bin/env bash
# The main job on the embedded default: synthetic two-person interactions -> packed dataset ->
# stage 1 RQ-VAE tokenizer (train, evaluate) -> token cache -> stage 2 LM pre-training (t2m, m2t,
# reactions) -> one generated motion (GIF) and one generated caption -> scores on the test split.
# Installs and builds first.
# Rerunning resumes or skips finished steps. VIMO_DEMO_CLIPS sets the dataset size (default 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
V=build/vimo
CLIPS="${VIMO_DEMO_CLIPS:-2000}"
step() { printf '\n\033[1m[demo] %s\033[0m\n' "$*"; }

step "1/9 synthetic interactions ($CLIPS clips) -> data/synthetic"
if [ -f data/synthetic/split/test.txt ]; then
  echo "data/synthetic exists; delete it to regenerate"
else
  $V data synth --out data/synthetic --clips "$CLIPS" --seed 1
fi

step "2/9 pack -> data/packed/synthetic/{train,val,test}.h5 + stats.safetensors"
$V data prepare --config configs/data/synthetic.yaml

step "3/9 stage 1: train the RQ-VAE motion tokenizer -> runs/tok-demo (rerun to resume)"
$V tokenizer train --config configs/tokenizer/demo.yaml run.dir=runs/tok-demo data.packed=data/packed/synthetic

step "4/9 stage 1: evaluate on the test split"
$V tokenizer eval --run runs/tok-demo --split test

step "5/9 token cache: every clip's codes, ids and captions -> tokens/synthetic"
$V tokenizer encode --run runs/tok-demo --data data/packed/synthetic --out tokens/synthetic

step "6/9 stage 2: pre-train the LM on t2m, m2t and reactions -> runs/pretrain-demo (rerun to resume)"
$V pretrain --config configs/pretrain/demo.yaml run.dir=runs/pretrain-demo model.tokenizer=runs/tok-demo \
  data.tokens=tokens/synthetic

step "7/9 text -> motion: one generated duet -> runs/pretrain-demo/demo_t2m.{npy,gif}"
$V generate --run runs/pretrain-demo --task t2m --text "Two people walk toward each other and shake right hands." \
  --greedy --out runs/pretrain-demo/demo_t2m.npy --render runs/pretrain-demo/demo_t2m.gif

step "8/9 motion -> text: the caption of a test clip"
clip=$(head -n 1 data/synthetic/split/test.txt)
$V data show data/packed/synthetic/test.h5 --clip "$clip" --out runs/pretrain-demo/demo_m2t_input.npy >/dev/null
echo "reference: $(head -n 1 "data/synthetic/annots/$clip.txt")"
printf 'generated: '
$V generate --run runs/pretrain-demo --task m2t --motion runs/pretrain-demo/demo_m2t_input.npy --greedy
echo

step "9/9 stage 2 on the test split: loss/accuracy per task, every clip's m2t caption and t2m motion"
$V lm score --run runs/pretrain-demo --tokens tokens/synthetic/test.h5 --generate 300 | grep -E '"(loss|accuracy)_|"valid"|"generated"'
printf 'm2t captions naming the right interaction type: '
"${VIMO_VENV:-$HOME/.cache/vimo/venv}/bin/python" scripts/m2t_type_accuracy.py --hyps runs/pretrain-demo/score_test/m2t_hyps.json \
  --refs runs/pretrain-demo/score_test/m2t_refs.json --meta data/synthetic/synth_meta.json
echo "Runs:        runs/tok-demo (stage 1), runs/pretrain-demo (stage 2: merged/, samples/, lm/)"
echo "TensorBoard: tensorboard --logdir runs"
