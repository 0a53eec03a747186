#!/bin/sh
# After train.py: convert the exported checkpoint to I2_S, TQ1_0 and TQ2_0, make the TQ1_0 file (the
# smallest; all three hold the same ternary values) the built-in demo model, write the reference
# fixture and the word list of the tests, print the held-out bits per byte, copy the loss curve.
#   sh tools/train-demo/finish.sh            (OUT=tools/train-demo/out by default; run after npm run build)
set -eu
cd "$(dirname "$0")/../.."
OUT=${OUT:-tools/train-demo/out}
PY=/usr/bin/python3
for t in i2_s tq1_0 tq2_0; do
  node bin/wf.js convert "$OUT/wrinklefree-demo" -o "$OUT/wrinklefree-demo-$t.gguf" --outtype "$t" --validate -q
done
mkdir -p models
cp "$OUT/wrinklefree-demo-tq1_0.gguf" models/wrinklefree-demo.gguf
$PY tools/train-demo/reference.py --out "$OUT" --fixture test/fixtures/demo --words test/fixtures/demo/words.txt.gz --bpb
gzip -n -9 -f test/fixtures/demo/reference-logits.f32
cp "$OUT/loss.png" tools/train-demo/loss.png
ls -l models/wrinklefree-demo.gguf test/fixtures/demo tools/train-demo/loss.png
