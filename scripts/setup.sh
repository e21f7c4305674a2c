#!/usr/bin/env bash
# Installs everything Sabot needs to build, idempotently:
#   - Debian packages: compiler, CMake, Ninja, ccache, GoogleTest, Google Benchmark, CLI11,
#     openssl (the transport tests make self-signed TLS certificates at test time), clang and
#     its compiler-rt (libFuzzer and the sanitizer runtimes, for the fuzz build);
#   - a project-local virtual environment (.venv) holding the one pinned pyarrow wheel whose
#     C++ headers and versioned shared libraries the build uses (Debian has no Arrow packages),
#     and the pinned reference engines the tests and benchmarks compare against (DuckDB,
#     Polars; scripts/reference-requirements.txt).
# Re-running it does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYARROW_VERSION="$(cat scripts/pyarrow-version)"
APT_PACKAGES=(g++ cmake ninja-build ccache pkg-config python3 python3-venv
              libgtest-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev libyaml-cpp-dev libcpp-httplib-dev openssl clang
              libclang-rt-14-dev chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The venv is made with the same python3 every time; a venv whose pyarrow differs is fixed.
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
have="$(.venv/bin/python -c 'import pyarrow; print(pyarrow.__version__)' 2>/dev/null || true)"
if [ "$have" != "$PYARROW_VERSION" ]; then
  echo "setup: installing pyarrow==$PYARROW_VERSION into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check "pyarrow==$PYARROW_VERSION"
fi
# The reference engines, pinned (a pin that differs from what is installed is reinstalled).
if ! .venv/bin/python - scripts/reference-requirements.txt <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    name, _, pinned = line.strip().partition("==")
    try:
        if version(name) != pinned:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  echo "setup: installing the reference engines (scripts/reference-requirements.txt) into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r scripts/reference-requirements.txt
fi
# The Python package (pyproject.toml, docs/python.md): its pinned build tools and test runner,
# then the package itself, built against the venv's pyarrow. It is reinstalled only when a file
# it is built from changed (the stamp below); its build tree (build/python/) and ccache keep a
# rebuild short.
if ! .venv/bin/python - scripts/python-requirements.txt <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    name, _, pinned = line.strip().partition("==")
    try:
        if version(name) != pinned:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  echo "setup: installing the Python package's build tools (scripts/python-requirements.txt) into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r scripts/python-requirements.txt
fi
package_stamp="$(find pyproject.toml CMakeLists.txt cmake python src -type f \
                   \( -name '*.cc' -o -name '*.h' -o -name '*.py' -o -name '*.toml' \
                      -o -name '*.cmake' -o -name CMakeLists.txt \) -print0 \
                 | sort -z | xargs -0 sha1sum | sha1sum | cut -d' ' -f1)"
stamp_file=build/python/installed.stamp
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$package_stamp" ] \
   || ! .venv/bin/python -c 'import sabot' 2>/dev/null; then
  echo "setup: building and installing the Python package (sabot) into .venv"
  CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true \
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps .
  mkdir -p build/python
  echo "$package_stamp" > "$stamp_file"
fi
echo "setup: ok (pyarrow $PYARROW_VERSION, $(tr '\n' ' ' < scripts/reference-requirements.txt)in .venv)"
