#!/bin/sh
# Installs civicsense into a new virtualenv TARGET_VENV, exactly as the image does: the
# Dockerfile RUNs this script, and tests/docker/test_install.py runs it outside Docker, so
# CI proves the image's install steps work.
#
#   docker/install-python.sh TARGET_VENV [PROJECT_DIR]
#
# PROJECT_DIR (default: this script's parent folder) holds pyproject.toml and the packages.
# Only pinned versions are installed: pip and the build backend from
# requirements-build.txt, the runtime dependencies from requirements.txt (the lock, wheels
# only but for one pure-Python source release), then the project itself with --no-deps.
# PYTHON chooses the interpreter (default: python3).
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 TARGET_VENV [PROJECT_DIR]" >&2
    exit 2
fi
docker_dir=$(cd "$(dirname "$0")" && pwd)
target=$1
project=${2:-$(dirname "$docker_dir")}

"${PYTHON:-python3}" -m venv "$target"
pip="$target/bin/python -m pip"
$pip install --quiet --only-binary=:all: -r "$docker_dir/requirements-build.txt"
# No build isolation: source releases build with the pinned setuptools above, not with
# whatever version an isolated build environment would download.
$pip install --quiet --no-build-isolation -r "$docker_dir/requirements.txt"
$pip install --quiet --no-build-isolation --no-deps "$project"
$pip check
