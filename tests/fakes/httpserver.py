"""The one HTTP server class every protocol fake runs on."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer

# A client that hangs up on a kept-alive connection (an SDK closing its pool, a test cancelling a transfer) is
# normal traffic, not a fake's fault: printing its traceback only buries real failures in the test output.
_HANGUPS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, TimeoutError)


class QuietServer(ThreadingHTTPServer):
    """A threaded server on daemon threads that stays silent when a client hangs up, and reports anything else."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], _HANGUPS):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]
