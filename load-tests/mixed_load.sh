#!/bin/sh
# mixed_load.sh: the seed's mixed load (post list, detail, create) against a
# Titanium deployment, at fixed per-second rates. POSIX sh + curl (jq optional).
#
#   sh ./mixed_load.sh --url http://127.0.0.1:30700 --duration 60s \
#       --rate-list 64 --rate-detail 12 --rate-create 4
#
# See --help and docs/load-tests.md.
set -u
PLUS=0
# lib/ must stay next to the script.
# shellcheck source=lib/common.sh
. "$(dirname -- "$0")/lib/common.sh" && load_main "$@"
