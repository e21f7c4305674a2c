#!/usr/bin/env bash
# The main job, from a fresh machine: installs and builds what is needed, then runs the demo.
# Extra arguments go to the job (see `build/release/src/sabot/tools/sabot --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh release
exec build/release/src/sabot/tools/sabot shuffle "$@"
