"""An AWS endpoint on loopback that answers every request with one canned HTTP response.

The ops tool talks to it through its own boto3 clients (``AWS_ENDPOINT_URL``), so botocore signs,
sends, retries and parses for real: an error body becomes the ClientError AWS would cause, a garbled
body the ResponseParserError, and the server counts the attempts botocore's retry mode made.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def query_error(code: str, message: str, *, service_namespace: str = "cloudformation") -> str:
    """The XML error body of a query-protocol service (CloudFormation, ElastiCache)."""
    return (f'<ErrorResponse xmlns="http://{service_namespace}.amazonaws.com/doc/2010-05-15/">'
            f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>")


@dataclass
class CannedResponse:
    status: int
    body: str
    content_type: str = "text/xml"


class CannedEndpoint:
    """``with CannedEndpoint(CannedResponse(403, query_error(...))) as endpoint:`` then point
    ``AWS_ENDPOINT_URL`` at ``endpoint.url``; ``endpoint.requests`` counts what arrived."""

    def __init__(self, response: CannedResponse) -> None:
        self.response = response
        self.requests = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                endpoint.requests += 1
                body = endpoint.response.body.encode()
                self.send_response(endpoint.response.status)
                self.send_header("Content-Type", endpoint.response.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "CannedEndpoint":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
