"""The console (docs/console.md): a small web page for operators on its own listener.

Sources and their keys, live decision and rejection rates, the report-mode view, Show
Token on an explicit (logged) click, and a playground that signs a URL and asks this
process's own ``/verify`` what it answers. Read-only towards the config, which stays in
git. Server-rendered HTML, one small script, a strict Content-Security-Policy.
"""

from sidecar.runtime.console.app import create_console_app as create_console_app
from sidecar.runtime.console.app import share_session_secret as share_session_secret
