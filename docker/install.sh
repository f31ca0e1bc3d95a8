#!/bin/sh
# The install steps of docker/Dockerfile, kept here so that tests/process/test_deploy_image.py runs the
# very same commands in a clean virtualenv (no Docker engine needed).
#
#   install.sh wheel SOURCE_DIR WHEEL_DIR   build stage: the project's wheel, no dependencies
#   install.sh venv WHEEL_DIR VENV_DIR      final stage: a virtualenv with that wheel and its
#                                           dependencies, bytecode compiled, pip removed
# PYTHON picks the interpreter (default: python3, the base image's).
set -eu
python=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore

case "${1:-}" in
wheel)
    "$python" -m pip wheel --no-deps --wheel-dir "$3" "$2"
    ;;
venv)
    "$python" -m venv "$3"
    "$3/bin/python" -m pip install "$2"/signed_url_sidecar-*.whl
    # The root filesystem is read-only at run time: compile everything now.
    "$3/bin/python" -m compileall -q "$3/lib" >/dev/null
    # Nothing installs packages at run time.
    "$3/bin/python" -m pip uninstall --yes --quiet pip
    # The entry point resolves and imports the whole command line.
    "$3/bin/sidecar" --help >/dev/null
    ;;
*)
    echo "usage: $0 wheel SOURCE_DIR WHEEL_DIR | venv WHEEL_DIR VENV_DIR" >&2
    exit 64
    ;;
esac
