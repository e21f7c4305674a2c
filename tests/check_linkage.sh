#!/usr/bin/env bash
# Fails when any given binary would load a library that must stay out of Sabot's processes:
# libarrow_python (never linked into C++ programs) or a system gRPC/protobuf (Arrow Flight carries
# its own, hidden; two copies in one process corrupt each other). Also fails when an Arrow library
# cannot be found, i.e. the RUNPATH to the wheel is missing.
set -euo pipefail
status=0
for binary in "$@"; do
  libs="$(ldd "$binary")"
  if grep -E 'libarrow_python|libgrpc|libgpr|libprotobuf|libabsl' <<<"$libs"; then
    echo "FAIL: $binary loads a forbidden library (above)"
    status=1
  fi
  if grep -E 'not found' <<<"$libs"; then
    echo "FAIL: $binary has unresolved libraries (above)"
    status=1
  fi
  grep -q 'libarrow\.so' <<<"$libs" || { echo "FAIL: $binary does not load libarrow"; status=1; }
  echo "checked $binary"
done
if [ "$status" -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit "$status"
