"""Which build this process runs: the mypyc-compiled verify path or pure Python.

``hatch_build.py`` compiles the modules it lists into extensions beside their sources;
Python imports an extension before a ``.py`` of the same name. ``sidecar --version``, the
start log line and ``signed_url_build_info`` report the answer, so an operator can tell a
wheel built without a C compiler (about a third slower per verification) at a glance.
"""

from __future__ import annotations

from sidecar.policy import decide

COMPILED = not decide.__file__.endswith(".py")
KIND = "compiled" if COMPILED else "pure"
