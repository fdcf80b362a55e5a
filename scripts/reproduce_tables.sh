#!/usr/bin/env bash
# Every evaluation protocol (t2m, m2t, reaction) for a set of LM runs on one split, then the tables
# in the layout of the paper's Tables 2-4 (markdown, JSON, LaTeX). A protocol is run only for the
# tasks a run was trained on (its lm/vim.json); finished generations are cached in each run, so a
# rerun resumes. Usage:
#   scripts/reproduce_tables.sh --evaluator EV [--split test] [--out tables] [--protocol intergen]
#                               [--replications 20] [--clip-vocab FILE] RUN [RUN ...] [-- EVAL_ARGS]
# EVAL_ARGS after `--` go to every `vimo eval t2m|m2t|reaction` (e.g. -- --generations 20 --mm-texts 100).
# e.g. scripts/reproduce_tables.sh --evaluator runs/eval-demo runs/pretrain-demo
set -euo pipefail
cd "$(dirname "$0")/.."
V="${VIMO_BIN:-build/vimo}"
EV="" SPLIT=test OUT=tables PROTOCOL=intergen REPS=20 CLIPVOCAB=""
RUNS=() PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --evaluator) EV="$2"; shift 2 ;;
    --split) SPLIT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --protocol) PROTOCOL="$2"; shift 2 ;;
    --replications) REPS="$2"; shift 2 ;;
    --clip-vocab) CLIPVOCAB="$2"; shift 2 ;;
    --) shift; PASS=("$@"); break ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "reproduce_tables.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) RUNS+=("$1"); shift ;;
  esac
done
[ -n "$EV" ] || { echo "reproduce_tables.sh: --evaluator EV is required (a run of \`vimo eval train-evaluator\` or a converted .safetensors)" >&2; exit 2; }
[ ${#RUNS[@]} -gt 0 ] || { echo "reproduce_tables.sh: name at least one LM run" >&2; exit 2; }
[ -x "$V" ] || { echo "reproduce_tables.sh: $V not found; build first (scripts/setup.sh) or set VIMO_BIN" >&2; exit 2; }
EXTRA=(--split "$SPLIT" --protocol "$PROTOCOL" --replications "$REPS")
[ -z "$CLIPVOCAB" ] || EXTRA+=(--clip-vocab "$CLIPVOCAB")
EXTRA+=("${PASS[@]}")

trained() {  # trained RUN TASK: whether lm/vim.json lists the task
  grep -q "\"$2\"" "$1/lm/vim.json"
}
for run in "${RUNS[@]}"; do
  [ -f "$run/lm/vim.json" ] || { echo "reproduce_tables.sh: '$run' is not an LM run (no lm/vim.json)" >&2; exit 2; }
  for task in t2m m2t reaction; do
    case "$task" in
      reaction) trained "$run" a2b || trained "$run" b2a || { echo "[$run] reaction: not trained, skipped"; continue; } ;;
      *) trained "$run" "$task" || { echo "[$run] $task: not trained, skipped"; continue; } ;;
    esac
    echo "[$run] $task ($SPLIT, $PROTOCOL, $REPS replications)"
    "$V" eval "$task" --run "$run" --evaluator "$EV" "${EXTRA[@]}"
  done
done
"$V" eval tables --runs "${RUNS[@]}" --out "$OUT" --split "$SPLIT"
echo "wrote $OUT/{t2m,m2t,reaction}_$SPLIT.{md,json,tex} (tasks no run was evaluated on are left out)"
