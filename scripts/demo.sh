#!/usr/bin/env bash
# The main job on the embedded default: synthetic two-person interactions -> packed dataset ->
# stage 1 RQ-VAE tokenizer (train, evaluate) -> token cache -> stage 2 LM pre-training (t2m, m2t,
# reactions) -> one generated motion (GIF) and one generated caption -> test loss per task -> the
# text-motion evaluator -> the paper's t2m, m2t and reaction protocols on the test split -> their
# tables (Tables 2-4 layout) -> a group of three and the group protocol -> synthetic multi-turn conversations -> stage 3 instruction tuning ->
# its evaluation (editing, reasoning, story) -> a scripted 3-turn chat (HTML page and GIFs).
# Installs and builds first.
# Rerunning resumes or skips finished steps. VIMO_DEMO_CLIPS sets the dataset size (default 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
V=build/vimo
CLIPS="${VIMO_DEMO_CLIPS:-2000}"
step() { printf '\n\033[1m[demo] %s\033[0m\n' "$*"; }

step "1/18 synthetic interactions ($CLIPS clips) -> data/synthetic"
if [ -f data/synthetic/split/test.txt ]; then
  echo "data/synthetic exists; delete it to regenerate"
else
  $V data synth --out data/synthetic --clips "$CLIPS" --seed 1
fi

step "2/18 pack -> data/packed/synthetic/{train,val,test}.h5 + stats.safetensors"
$V data prepare --config configs/data/synthetic.yaml

step "3/18 stage 1: train the RQ-VAE motion tokenizer -> runs/tok-demo (rerun to resume)"
$V tokenizer train --config configs/tokenizer/demo.yaml run.dir=runs/tok-demo data.packed=data/packed/synthetic

step "4/18 stage 1: evaluate on the test split"
$V tokenizer eval --run runs/tok-demo --split test

step "5/18 token cache: every clip's codes, ids and captions -> tokens/synthetic"
$V tokenizer encode --run runs/tok-demo --data data/packed/synthetic --out tokens/synthetic

step "6/18 stage 2: pre-train the LM on t2m, m2t and reactions -> runs/pretrain-demo (rerun to resume)"
$V pretrain --config configs/pretrain/demo.yaml run.dir=runs/pretrain-demo model.tokenizer=runs/tok-demo \
  data.tokens=tokens/synthetic

step "7/18 text -> motion: one generated duet -> runs/pretrain-demo/demo_t2m.{npy,gif}"
$V generate --run runs/pretrain-demo --task t2m --text "Two people walk toward each other and shake right hands." \
  --sample --out runs/pretrain-demo/demo_t2m.npy --render runs/pretrain-demo/demo_t2m.gif

step "8/18 motion -> text: the caption of a test clip"
clip=$(head -n 1 data/synthetic/split/test.txt)
$V data show data/packed/synthetic/test.h5 --clip "$clip" --out runs/pretrain-demo/demo_m2t_input.npy >/dev/null
echo "reference: $(head -n 1 "data/synthetic/annots/$clip.txt")"
printf 'generated: '
$V generate --run runs/pretrain-demo --task m2t --motion runs/pretrain-demo/demo_m2t_input.npy --greedy
echo

step "9/18 stage 2 on the test split: loss and token accuracy per task"
$V lm score --run runs/pretrain-demo --tokens tokens/synthetic/test.h5 | grep -E '"(loss|accuracy)_'

step "10/18 the text-motion evaluator (contrastive, InterCLIP-like) -> runs/eval-demo (rerun to resume)"
$V eval train-evaluator --config configs/eval/evaluator_demo.yaml run.dir=runs/eval-demo data.packed=data/packed/synthetic

step "11/18 protocols on the test split: t2m, m2t, reaction -> runs/pretrain-demo/eval/"
for task in t2m m2t reaction; do
  $V eval "$task" --run runs/pretrain-demo --evaluator runs/eval-demo --split test
done
printf 'm2t captions naming the right interaction type: '
"${VIMO_VENV:-$HOME/.cache/vimo/venv}/bin/python" scripts/m2t_type_accuracy.py --hyps runs/pretrain-demo/eval/m2t_test_hyps.json \
  --refs runs/pretrain-demo/eval/m2t_test_refs.json --meta data/synthetic/synth_meta.json

step "12/18 the tables (layout of the paper's Tables 2-4) -> runs/tables/"
$V eval tables --runs runs/pretrain-demo --out runs/tables --split test >/dev/null
cat runs/tables/t2m_test.md runs/tables/m2t_test.md runs/tables/reaction_test.md

step "13/18 a group of three by iterative prompting (GIF + BVH per person), and the group protocol -> runs/pretrain-demo/eval/group3_synthetic.md"
$V generate --run runs/pretrain-demo --task group --persons 3 --text "the first person shakes hands with the second person." \
  --out runs/pretrain-demo/demo_group.npy --render runs/pretrain-demo/demo_group.gif --bvh runs/pretrain-demo/demo_group
$V eval group --run runs/pretrain-demo --evaluator runs/eval-demo --persons 3 --scenes "${VIMO_DEMO_GROUP_SCENES:-12}"

step "14/18 synthetic Inter-MT2: editing, reasoning and story conversations with their clips -> data/conversations"
if [ -f data/conversations/dialogues/meta.json ]; then
  echo "data/conversations exists; delete it to regenerate"
else
  $V data conversations --synthetic data/conversations --out data/conversations/dialogues --count "${VIMO_DEMO_CONVERSATIONS:-600}" --seed 1
fi

step "15/18 pack and encode the conversation clips -> data/packed/conversations, tokens/conversations"
$V data prepare --config configs/data/conversations.yaml
$V tokenizer encode --run runs/tok-demo --data data/packed/conversations --out tokens/conversations

step "16/18 stage 3: instruction tuning on the conversations -> runs/instruct-demo (rerun to resume)"
$V instruct --config configs/instruct/demo.yaml run.dir=runs/instruct-demo model.init=runs/pretrain-demo \
  data.conversations=data/conversations/dialogues data.tokens=tokens/conversations data.pretrain_tokens=tokens/synthetic

step "17/18 stage 3 on held-out conversations: editing, reasoning, story -> runs/instruct-demo/eval/"
$V eval instruct --run runs/instruct-demo --evaluator runs/eval-demo --conversations data/conversations/dialogues \
  --tokens tokens/conversations --packed data/packed/conversations --split test --limit "${VIMO_DEMO_EVAL_LIMIT:-40}"

step "18/18 a scripted chat: generate, edit, ask what happens next -> runs/instruct-demo/chat/"
$V chat --run runs/instruct-demo --script scripts/demo_chat.txt --out runs/instruct-demo/chat --html runs/instruct-demo/chat/chat.html

echo
echo "Runs:        runs/tok-demo (stage 1), runs/pretrain-demo (stage 2: merged/, samples/, lm/, eval/),"
echo "             runs/eval-demo (evaluator), runs/tables (md, json, tex), runs/instruct-demo (stage 3: eval/, chat/)"
echo "TensorBoard: tensorboard --logdir runs"
