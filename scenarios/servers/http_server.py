"""Python's http.server as `python3 -m http.server` runs it: a ThreadingHTTPServer, whose
listen() backlog is socketserver's request_queue_size, 5. BACKLOG=1024 is the fix. It answers
every GET with "ok" instead of a directory listing.

Usage: python3 http_server.py PORT HOST
"""

import http.server
import os
import socket
import sys


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = int(os.environ.get("BACKLOG", 5))


class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port, host = int(sys.argv[1]), sys.argv[2]
    # As `python3 -m http.server --bind` does: an IPv6 address needs an AF_INET6 socket.
    if ":" in host:
        Server.address_family = socket.AF_INET6
    Server((host, port), Ok).serve_forever()
