#!/usr/bin/env bash
# Copies Chart.js from node_modules (installed by `npm ci` from the lockfile)
# into the directory the Go binary embeds, so that the dashboard needs no CDN
# at run time. Idempotent: the copy is refreshed only when it differs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src_dir="$here/node_modules/chart.js/dist"
dst_dir="$here/web/static/vendor"
dst="$dst_dir/chart.umd.min.js"

src=""
for name in chart.umd.min.js chart.umd.js chart.min.js; do
	if [ -f "$src_dir/$name" ]; then
		src="$src_dir/$name"
		break
	fi
done
if [ -z "$src" ]; then
	echo "vendor.sh: Chart.js not found in $src_dir; run 'npm ci' in dashboard-ui (or 'make deps')" >&2
	exit 1
fi

mkdir -p "$dst_dir"
if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
	exit 0
fi
cp "$src" "$dst.tmp"
mv "$dst.tmp" "$dst"
echo "vendor.sh: $(head -c 200 "$dst" | grep -o 'Chart.js v[0-9.]*' || echo Chart.js) -> ${dst#"$here"/}"
