#!/usr/bin/env bash
# Restores a pretraining snapshot that was committed between sessions and later dropped from the tree
# (the final model ships once; its mid-run states live only in git history). Used by the pretraining-budget
# grid (data/grids/pretraining-budget.json) to fine-tune the same run at fewer tokens seen.
#   scripts/checkpoint-from-history.sh [out] [commit] [run]
# defaults: .cache/checkpoints/small-v3-step-2800 (relative to the checkout), c633088 (small-v3 at step 2,800
# of 6,104: 22.9M of 50M tokens), healing-bert-small-v3. Never overwrites: an existing out is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.cache/checkpoints/small-v3-step-2800}"
commit="${2:-c633088}"
run="${3:-healing-bert-small-v3}"
src="data/pretraining/$run/snapshot/checkpoint"
if [ -e "$out" ]; then
  echo "checkpoint-from-history: $out exists; leaving it as it is" >&2
  exit 0
fi
if ! git cat-file -e "$commit:$src/model.safetensors" 2>/dev/null; then
  echo "checkpoint-from-history: commit $commit has no $src/model.safetensors (a shallow clone? run git fetch --unshallow)" >&2
  exit 1
fi
tmp="$out.tmp-$$"
mkdir -p "$tmp"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json vocab.txt; do
  git show "$commit:$src/$f" > "$tmp/$f"
done
# pretraining.json as an exported model has it ({ state, curve }), so tokens seen read the same way.
git show "$commit:data/pretraining/$run/snapshot/state.json" > "$tmp/state.json"
git show "$commit:data/pretraining/$run/curve.jsonl" > "$tmp/curve.jsonl"
node -e '
  const fs = require("fs"); const [dir] = process.argv.slice(1);
  const state = JSON.parse(fs.readFileSync(dir + "/state.json", "utf8"));
  const curve = fs.readFileSync(dir + "/curve.jsonl", "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  fs.writeFileSync(dir + "/pretraining.json", JSON.stringify({ state, curve, restoredFrom: process.argv[2] }, null, 2) + "\n");
' "$tmp" "$commit:$src"
rm "$tmp/state.json" "$tmp/curve.jsonl"
mv "$tmp" "$out"
echo "checkpoint-from-history: $run at $commit -> $out"
