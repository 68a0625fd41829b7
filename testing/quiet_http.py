"""An HTTP server for test doubles that says nothing when a client hangs up, and still reports real errors."""

import sys
from http.server import ThreadingHTTPServer

# A client that is done early (a test that read what it needed, a browser closing its page, the app
# cancelling a model stream) closes its connection; writing to it or reading from it then fails.
HANG_UPS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], HANG_UPS):
            return
        super().handle_error(request, client_address)  # the traceback of anything else, as before
