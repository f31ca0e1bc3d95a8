#!/bin/sh
# The install steps of docker/Dockerfile, kept here so that tests/process/test_deploy_image.py runs the
# very same commands in a clean virtualenv (no Docker engine needed).
#
#   install.sh wheel SOURCE_DIR WHEEL_DIR   build stage: the project's wheel, no dependencies, and
#                                           SOURCE_DIR/requirements.lock copied beside it
#   install.sh venv WHEEL_DIR VENV_DIR      final stage: a virtualenv with that wheel and exactly
#                                           the locked dependencies, every file checked against its
#                                           hash; bytecode compiled, pip removed
# PYTHON picks the interpreter (default: python3, the base image's).
set -eu
python=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore

case "${1:-}" in
wheel)
    "$python" -m pip wheel --no-deps --wheel-dir "$3" "$2"
    cp "$2/requirements.lock" "$3/requirements.lock"
    ;;
venv)
    wheels=$2 venv=$3
    lock="$wheels/requirements.lock"
    if [ ! -f "$lock" ]; then
        echo "$0: $lock is missing: make WHEEL_DIR with '$0 wheel'" >&2
        exit 66
    fi
    set -- "$wheels"/signed_url_sidecar-*.whl
    if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
        echo "$0: expected exactly one signed_url_sidecar wheel in $wheels" >&2
        exit 66
    fi
    wheel=$1
    "$python" -m venv "$venv"
    # One hash-checked install: the wheel (pinned to its own hash) and the lock. pip refuses
    # any file whose hash is not listed and any dependency the lock does not pin, so the image
    # holds exactly the locked releases. Wheels only: nothing is compiled or run to install.
    requirements=$(mktemp)
    trap 'rm -f "$requirements"' EXIT
    wheel_hash=$("$venv/bin/python" -c 'import hashlib, sys; print(hashlib.file_digest(open(sys.argv[1], "rb"), "sha256").hexdigest())' "$wheel")
    { cat "$lock"; printf '%s --hash=sha256:%s\n' "$wheel" "$wheel_hash"; } >"$requirements"
    "$venv/bin/python" -m pip install --quiet --require-hashes --only-binary :all: -r "$requirements"
    "$venv/bin/python" -m pip check
    # The root filesystem is read-only at run time: compile everything now.
    "$venv/bin/python" -m compileall -q "$venv/lib" >/dev/null
    # Nothing installs packages at run time, and nothing imports the installers (the venv's
    # own setuptools is old and would only widen what a scanner reports).
    "$venv/bin/python" -m pip uninstall --yes --quiet setuptools pip
    # The entry point resolves and imports the whole command line.
    "$venv/bin/sidecar" --help >/dev/null
    ;;
*)
    echo "usage: $0 wheel SOURCE_DIR WHEEL_DIR | venv WHEEL_DIR VENV_DIR" >&2
    exit 64
    ;;
esac
