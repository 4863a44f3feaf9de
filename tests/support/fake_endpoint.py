"""An AWS endpoint on loopback that answers every request with one canned HTTP response.

The ops tool talks to it through its own boto3 clients (``AWS_ENDPOINT_URL``), so botocore signs,
sends, retries and parses for real: an error body becomes the ClientError AWS would cause, a garbled
body the ResponseParserError, and the server counts the attempts botocore's retry mode made.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from loopback import LoopbackHttpServer, reply


def query_error(code: str, message: str, *, service_namespace: str = "cloudformation") -> str:
    """The XML error body of a query-protocol service (CloudFormation, ElastiCache)."""
    return (
        f'<ErrorResponse xmlns="http://{service_namespace}.amazonaws.com/doc/2010-05-15/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )


@dataclass
class CannedResponse:
    status: int
    body: str
    content_type: str = "text/xml"


class CannedEndpoint(LoopbackHttpServer):
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
                response = endpoint.response
                reply(self, response.status, response.body.encode(), response.content_type)

            def log_message(self, *_) -> None:
                pass

        super().__init__(Handler)
        self.url = self.base_url
