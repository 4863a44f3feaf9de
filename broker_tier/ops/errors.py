"""Every failure a ``broker-tier-ops`` command can meet, as one line (cause, then what to do) and an exit code.

``classify`` turns any exception into a ``Failure``; the CLI and ``Report.abort`` use it, so a new
command gets the same messages and exit codes without handling errors itself. ``EXIT_CODES`` is the
table ``--help`` and the README show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from botocore.exceptions import (
    ClientError, ConnectionError as BotoConnectionError, CredentialRetrievalError, HTTPClientError, NoCredentialsError,
    NoRegionError, PartialCredentialsError, ProfileNotFound, SSOError, TokenRetrievalError, WaiterError)
from botocore.parsers import ResponseParserError


class OpsError(Exception):
    """A precondition the operator must fix before the command can run (nothing was changed);
    ``str()`` says what and how."""


@dataclass(frozen=True)
class ExitCode:
    code: int
    name: str
    meaning: str


EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(0, "passed", "done, or planned with --dry-run; status: every check healthy"),
    ExitCode(1, "failed", "ran, and a check failed: the drill's hypothesis did not hold; status: the tier is unhealthy"),
    ExitCode(2, "refused", "a precondition does not hold (steady state, stack or output missing, unknown class or "
                           "node); nothing was changed. Also a usage error (bad option; no report then)"),
    ExitCode(3, "aborted", "stopped after a change had started: a time-out, or any failure below once the change "
                           "was under way; look at the resource before anything else"),
    ExitCode(4, "credentials", "no region, no credentials, expired or invalid credentials, unknown profile; nothing "
                               "was changed"),
    ExitCode(5, "access-denied", "AWS refused a call for lack of permission; nothing was changed"),
    ExitCode(6, "unreachable", "an AWS endpoint could not be reached, timed out, or kept throttling beyond the retry "
                               "budget; nothing was changed: try again"),
    ExitCode(7, "aws-error", "AWS returned any other error (a resource not found or in the wrong state); nothing "
                             "was changed"),
    ExitCode(8, "unexpected", "a malformed or incomplete AWS response, or a defect of the tool; run it again with "
                              "--debug for the traceback"),
    ExitCode(130, "interrupted", "stopped by Ctrl-C before any change (3 once a change was under way)"),
)
CODE = {entry.name: entry.code for entry in EXIT_CODES}


def exit_code_table() -> str:
    """The table of exit codes as plain text (for ``--help``)."""
    return "\n".join(f"  {entry.code:>3}  {entry.name:<14}{entry.meaning}" for entry in EXIT_CODES)


@dataclass(frozen=True)
class Failure:
    """What went wrong, in words an operator can act on at 3 a.m."""

    kind: str
    """A name of ``EXIT_CODES`` (or "time-out", whose code is that of ``aborted``)."""
    cause: str
    """What happened, with the detail AWS gave (one line)."""
    remedy: str
    """What to do about it."""
    error_type: str
    """The exception's class, for the report."""

    @property
    def exit_code(self) -> int:
        return CODE["aborted"] if self.kind == "time-out" else CODE[self.kind]

    @property
    def line(self) -> str:
        return f"{self.cause}; {self.remedy}"

    def as_dict(self) -> dict[str, str | int]:
        return {"kind": self.kind, "exit_code": self.exit_code, "cause": self.cause, "remedy": self.remedy,
                "error_type": self.error_type}


EXPIRED = {"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"}
INVALID_CREDENTIALS = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                       "InvalidSignatureException", "IncompleteSignature", "MissingAuthenticationToken",
                       "AuthFailure", "InvalidAccessKeyId"}
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
                 "NotAuthorized", "Forbidden"}
# The codes botocore's standard retry mode treats as throttling (botocore/retries/standard.py), the ones these
# services use; a ClientError with one of them has outlived the retry budget.
THROTTLED = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
             "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"}
UNAVAILABLE = {"ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalError",
               "InternalServerError", "RequestTimeout", "RequestTimeoutException"}
CREDENTIAL_HELP = ("pass --profile (or set AWS_PROFILE), log in again (aws sso login --profile NAME), or export "
                   "fresh AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN")


def one_line(text: object, limit: int = 400) -> str:
    """``text`` on one line (whitespace collapsed), cut at ``limit`` characters."""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def classify(error: BaseException) -> Failure:
    """The failure ``error`` stands for: its cause in one line, what to do, and its exit code."""
    kind, cause, remedy = _classify(error)
    return Failure(kind=kind, cause=one_line(cause), remedy=remedy, error_type=type(error).__name__)


def _classify(error: BaseException) -> tuple[str, str, str]:  # noqa: C901 - one branch per failure class
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", "interrupted (Ctrl-C)", "look at the resource's state before running anything again"
    if isinstance(error, OpsError):
        return "refused", str(error), "nothing was changed"
    if isinstance(error, TimeoutError):
        return "time-out", f"time-out: {error}", "look at the resource's state (status, the AWS console) before " \
                                                 "running anything again"
    if isinstance(error, NoRegionError):
        return ("credentials", "no AWS region configured",
                "pass --region, or set AWS_REGION or AWS_DEFAULT_REGION, or give the profile a region")
    if isinstance(error, ProfileNotFound):
        return ("credentials", f"AWS profile not found ({error})",
                "check --profile or AWS_PROFILE against ~/.aws/config (aws configure list-profiles)")
    if isinstance(error, (TokenRetrievalError, SSOError)):
        return "credentials", f"the AWS login session has expired or is missing ({error})", CREDENTIAL_HELP
    if isinstance(error, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return "credentials", f"no usable AWS credentials ({error})", CREDENTIAL_HELP
    if isinstance(error, WaiterError):
        return _classify_waiter(error)
    if isinstance(error, ClientError):
        return _classify_client_error(error)
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return ("unreachable", f"cannot reach AWS ({error})",
                "check the network, VPN or proxy, and --region (and AWS_ENDPOINT_URL if set); then run it again")
    if isinstance(error, ResponseParserError):
        return ("unexpected", f"AWS sent a response the tool cannot parse ({error})",
                "run it again; if it persists, run with --debug and report the traceback")
    if isinstance(error, (KeyError, IndexError)):
        return ("unexpected", f"an AWS response lacks {error} (or the tool has a defect)",
                "run it again with --debug and report the traceback")
    return ("unexpected", f"internal error: {type(error).__name__}: {error}",
            "run it again with --debug and report the traceback")


def _classify_client_error(error: ClientError) -> tuple[str, str, str]:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = details.get("Message") or code
    where = f"{error.operation_name}: {message}"
    attempts = error.response.get("ResponseMetadata", {}).get("RetryAttempts")
    if code in EXPIRED:
        return "credentials", f"AWS credentials have expired ({code}; {where})", CREDENTIAL_HELP
    if code == "RequestExpired":
        return ("credentials", f"the request's signature is too old ({where})",
                "check this machine's clock (it must be within 5 minutes of AWS's); then run it again")
    if code in INVALID_CREDENTIALS:
        return "credentials", f"AWS does not accept these credentials ({code}; {where})", CREDENTIAL_HELP
    if code in ACCESS_DENIED or code.endswith("AccessDenied") or code.endswith("AccessDeniedException"):
        return ("access-denied", f"access denied ({code}; {where})",
                f"use a role allowed to call {error.operation_name} on this resource (check --profile); the "
                f"README lists the calls each command makes")
    if code in THROTTLED:
        tried = f" after {attempts + 1} attempts" if attempts is not None else ""
        return ("unreachable", f"AWS kept throttling{tried} ({code}; {where})",
                "wait a minute and run it again; if other tools are polling the same API, pause them "
                "(AWS_MAX_ATTEMPTS raises the retry budget)")
    if code in UNAVAILABLE:
        return "unreachable", f"AWS is unavailable ({code}; {where})", "wait a minute and run it again"
    return ("aws-error", f"AWS refused {error.operation_name} ({code}: {message})",
            "read AWS's message above; check the names the command used (--env, --region, the resource ids)")


def _classify_waiter(error: WaiterError) -> tuple[str, str, str]:
    response = error.last_response if isinstance(error.last_response, dict) else {}
    if "Error" in response:  # the waiter stopped on an API error: classify that error
        return _classify_client_error(ClientError(response, error.kwargs.get("name", "waiter")))
    return ("time-out", f"time-out: {error}",
            "look at the resource's state (status, the AWS console) before running anything again")
