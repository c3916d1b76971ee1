#!/bin/sh
# mixed_load_plus.sh: the seed's extended mixed load (list, detail, create,
# update, delete) against a Titanium deployment; it deletes what it created.
# POSIX sh + curl (jq optional).
#
#   sh ./mixed_load_plus.sh --url http://127.0.0.1:30700 --duration 60s \
#       --rate-list 40 --rate-detail 15 --rate-create 8 --rate-update 4 --rate-delete 3
#   sh ./mixed_load_plus.sh --url http://127.0.0.1:30700 --cleanup
#
# See --help and docs/load-tests.md.
set -u
PLUS=1
# lib/ must stay next to the script.
# shellcheck source=lib/common.sh
. "$(dirname -- "$0")/lib/common.sh" && load_main "$@"
