"""Every failure a ``broker-tier-ops`` command can meet, as one line (cause, then what to do) and an exit code.

``classify`` turns any exception into a ``Failure``; the CLI and ``Report.abort`` use it, so a new
command gets the same messages and exit codes without handling errors itself. ``EXIT_CODES`` is the
table ``broker-tier-ops --help`` and docs/operations.md show.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import botocore.session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConfigParseError,
    CredentialRetrievalError,
    HTTPClientError,
    InvalidChecksumConfigError,
    InvalidConfigError,
    InvalidDefaultsMode,
    InvalidMaxRetryAttemptsError,
    InvalidRegionError,
    InvalidRetryConfigurationError,
    InvalidRetryModeError,
    InvalidSTSRegionalEndpointsConfigError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
    WaiterError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.parsers import ResponseParserError


class OpsError(Exception):
    """A precondition the operator must fix before the command can run (nothing was changed);
    ``str()`` says what and how. ``problems``: each of several findings behind it (e.g. every invalid value
    of cdk.json), kept whole and apart so that none is cut off or run into the next."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


SETTING_ERRORS: tuple[type[BotoCoreError], ...] = (
    InvalidRegionError,
    ConfigParseError,
    InvalidConfigError,
    InvalidRetryConfigurationError,
    InvalidDefaultsMode,
    InvalidChecksumConfigError,
    InvalidSTSRegionalEndpointsConfigError,
)
"""botocore's exceptions for a value of its configuration (region, config file, AWS_* variable, profile key) it
cannot use: raised while a session or client is made, before any request, so never a defect of the tool."""
REJECTED_VALUE: dict[type[BotoCoreError], str] = {
    InvalidRegionError: "region_name",
    InvalidRetryModeError: "provided_retry_mode",
    InvalidMaxRetryAttemptsError: "provided_max_attempts",
    InvalidDefaultsMode: "mode",
    InvalidChecksumConfigError: "config_value",
    InvalidSTSRegionalEndpointsConfigError: "sts_regional_endpoints_config",
}
"""The keyword argument of each of ``SETTING_ERRORS`` that holds the value botocore rejected."""


class SettingError(Exception):
    """An AWS SDK setting botocore rejected, found where it is set (``--region``, an AWS_* variable, a key of the
    profile): ``blame_setting`` makes it from the bare error, so the operator learns which setting to fix."""

    def __init__(self, setting: str, value: str, problem: str, remedy: str) -> None:
        super().__init__(f"{setting} is set to {value!r}, which the AWS SDK rejects ({problem})")
        self.remedy = remedy


@dataclass(frozen=True)
class ExitCode:
    code: int
    name: str
    brief: str
    """What it means, in a line of ``--help`` (docs/operations.md has the whole of it)."""


EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(0, "passed", "done, or planned with --dry-run; status: every check healthy"),
    ExitCode(1, "failed", "ran, and a check failed (the drill's hypothesis; status: unhealthy)"),
    ExitCode(2, "refused", "a precondition does not hold, or a usage error; nothing was changed"),
    ExitCode(3, "aborted", "stopped once a change was under way: look at the resource first"),
    ExitCode(4, "credentials", "no region or credentials, or an AWS setting rejected; nothing changed"),
    ExitCode(5, "access-denied", "AWS refused a call for lack of permission; nothing was changed"),
    ExitCode(6, "unreachable", "AWS unreachable, timing out or throttling; nothing changed: try again"),
    ExitCode(7, "aws-error", "any other AWS error (not found, wrong state); nothing was changed"),
    ExitCode(8, "unexpected", "a malformed AWS response or a defect of the tool: run with --debug"),
    ExitCode(130, "interrupted", "stopped by Ctrl-C before any change (3 once one was under way)"),
)
CODE = {entry.name: entry.code for entry in EXIT_CODES}


def exit_code_table() -> str:
    """The table of exit codes as plain text, a line each (for ``--help``)."""
    return "\n".join(f"  {entry.code:>3}  {entry.name:<14}{entry.brief}" for entry in EXIT_CODES)


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
    problems: tuple[str, ...] = field(default=())
    """Each finding behind ``cause`` in full (``OpsError.problems``), for the report's list."""

    @property
    def exit_code(self) -> int:
        return CODE["aborted"] if self.kind == "time-out" else CODE[self.kind]

    @property
    def line(self) -> str:
        """Cause, every problem (numbered when several: a problem's own text may hold a "; "), then remedy."""
        problems = (
            [f"({number}) {problem}" for number, problem in enumerate(self.problems, start=1)]
            if len(self.problems) > 1
            else list(self.problems)
        )
        if problems:
            return f"{self.cause}: {'; '.join(problems)}; {self.remedy}"
        return f"{self.cause}; {self.remedy}"

    def as_dict(self) -> dict[str, str | int | list[str]]:
        return {
            "kind": self.kind,
            "exit_code": self.exit_code,
            "cause": self.cause,
            "problems": list(self.problems),
            "remedy": self.remedy,
            "error_type": self.error_type,
        }


EXPIRED = {"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"}
INVALID_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "AuthFailure",
    "InvalidAccessKeyId",
}
ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "NotAuthorized",
    "Forbidden",
}
# The codes botocore's standard retry mode treats as throttling (botocore/retries/standard.py), the ones these
# services use; a ClientError with one of them has outlived the retry budget.
THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
}
UNAVAILABLE = {
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "RequestTimeout",
    "RequestTimeoutException",
}
REGION_REMEDY = "give a region code such as eu-west-1 (lower case, no spaces)"
CREDENTIAL_HELP = (
    "pass --profile (or set AWS_PROFILE), log in again (aws sso login --profile NAME), or export "
    "fresh AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN"
)


def one_line(text: object, limit: int | None = 400) -> str:
    """``text`` on one line (whitespace collapsed), cut at ``limit`` characters (None: never cut)."""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


def classify(error: BaseException) -> Failure:
    """The failure ``error`` stands for: its cause in one line, what to do, and its exit code. The cause, often
    foreign text, is cut; the problems of an ``OpsError`` are the tool's own findings and are kept whole."""
    kind, cause, remedy = _classify(error)
    problems = tuple(one_line(problem, None) for problem in error.problems) if isinstance(error, OpsError) else ()
    return Failure(kind=kind, cause=one_line(cause), remedy=remedy, error_type=type(error).__name__, problems=problems)


Describe = Callable[[BaseException], tuple[str, str, str]]


def _text(kind: str, cause: str, remedy: str) -> Describe:
    """A failure described by fixed words; ``{error}`` in ``cause`` is the exception's text."""
    return lambda error: (kind, cause.format(error=error), remedy)


def _config_parse_error(error: BaseException) -> tuple[str, str, str]:
    kwargs = getattr(error, "kwargs", {})
    return (
        "credentials",
        f"the AWS config file {kwargs.get('path')} cannot be parsed ({kwargs.get('error', error)})",
        "fix its syntax (each section header whole on a line of its own, e.g. [profile NAME], then key = value "
        "lines), or point AWS_CONFIG_FILE (AWS_SHARED_CREDENTIALS_FILE for the credentials file) at a valid file",
    )


def _invalid_region(error: BaseException) -> tuple[str, str, str]:
    return (
        "credentials",
        f"{getattr(error, 'kwargs', {}).get('region_name')!r} is not an AWS region name",
        f"{REGION_REMEDY} with --region (or fix AWS_REGION, AWS_DEFAULT_REGION or the profile's region)",
    )


CHECK_STATE = "look at the resource's state (status, the AWS console) before running anything again"
DEFECT = "run it again with --debug and report the traceback"
RULES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Describe], ...] = (
    (
        KeyboardInterrupt,
        _text("interrupted", "interrupted (Ctrl-C)", "look at the resource's state before running anything again"),
    ),
    (OpsError, _text("refused", "{error}", "nothing was changed")),
    (TimeoutError, _text("time-out", "time-out: {error}", CHECK_STATE)),
    (SettingError, lambda error: ("credentials", str(error), error.remedy)),  # type: ignore[attr-defined]
    (ConfigParseError, _config_parse_error),
    (InvalidRegionError, _invalid_region),
    (
        SETTING_ERRORS,
        _text(
            "credentials",
            "an AWS SDK setting is invalid ({error})",
            "fix or unset the AWS_* variable, or the key of the profile in the AWS config file, that it names",
        ),
    ),
    (
        NoRegionError,
        _text(
            "credentials",
            "no AWS region configured",
            "pass --region, or set AWS_REGION or AWS_DEFAULT_REGION, or give the profile a region",
        ),
    ),
    (
        ProfileNotFound,
        _text(
            "credentials",
            "AWS profile not found ({error})",
            "check --profile or AWS_PROFILE against ~/.aws/config (aws configure list-profiles)",
        ),
    ),
    (
        (TokenRetrievalError, SSOError),
        _text("credentials", "the AWS login session has expired or is missing ({error})", CREDENTIAL_HELP),
    ),
    (
        (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError),
        _text("credentials", "no usable AWS credentials ({error})", CREDENTIAL_HELP),
    ),
    (WaiterError, lambda error: _classify_waiter(error)),
    (ClientError, lambda error: _classify_client_error(error)),
    (
        (BotoConnectionError, HTTPClientError),
        _text(
            "unreachable",
            "cannot reach AWS ({error})",
            "check the network, VPN or proxy, and --region (and AWS_ENDPOINT_URL if set); then run it again",
        ),
    ),
    (
        ResponseParserError,
        _text(
            "unexpected",
            "AWS sent a response the tool cannot parse ({error})",
            "run it again; if it persists, run with --debug and report the traceback",
        ),
    ),
    ((KeyError, IndexError), _text("unexpected", "an AWS response lacks {error} (or the tool has a defect)", DEFECT)),
)
"""Each kind of exception and how it reads, in order: the first that matches wins (a ``SettingError`` before
botocore's setting errors, ``ConfigParseError`` and ``InvalidRegionError`` before the rest of them)."""


def _classify(error: BaseException) -> tuple[str, str, str]:
    """(kind, cause, remedy) by the first of ``RULES`` that matches; anything else is an internal error."""
    for types, describe in RULES:
        if isinstance(error, types):
            return describe(error)
    return "unexpected", f"internal error: {type(error).__name__}: {error}", DEFECT


def _classify_client_error(error: ClientError) -> tuple[str, str, str]:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = details.get("Message") or code
    where = f"{error.operation_name}: {message}"
    attempts = error.response.get("ResponseMetadata", {}).get("RetryAttempts")
    if code in EXPIRED:
        return "credentials", f"AWS credentials have expired ({code}; {where})", CREDENTIAL_HELP
    if code == "RequestExpired":
        return (
            "credentials",
            f"the request's signature is too old ({where})",
            "check this machine's clock (it must be within 5 minutes of AWS's); then run it again",
        )
    if code in INVALID_CREDENTIALS:
        return "credentials", f"AWS does not accept these credentials ({code}; {where})", CREDENTIAL_HELP
    if code in ACCESS_DENIED or code.endswith("AccessDenied") or code.endswith("AccessDeniedException"):
        return (
            "access-denied",
            f"access denied ({code}; {where})",
            f"use a role allowed to call {error.operation_name} on this resource (check --profile); "
            f"docs/operations.md lists the calls each command makes",
        )
    if code in THROTTLED:
        tried = f" after {attempts + 1} attempts" if attempts is not None else ""
        return (
            "unreachable",
            f"AWS kept throttling{tried} ({code}; {where})",
            "wait a minute and run it again; if other tools are polling the same API, pause them "
            "(AWS_MAX_ATTEMPTS raises the retry budget)",
        )
    if code in UNAVAILABLE:
        return "unreachable", f"AWS is unavailable ({code}; {where})", "wait a minute and run it again"
    return (
        "aws-error",
        f"AWS refused {error.operation_name} ({code}: {message})",
        "AWS's message, in the parentheses, says what is wrong: check the names the command used (--env, "
        "--region, the resource ids) against it",
    )


def _classify_waiter(error: WaiterError) -> tuple[str, str, str]:
    response = error.last_response if isinstance(error.last_response, dict) else {}
    if "Error" in response:  # the waiter stopped on an API error: classify that error
        return _classify_client_error(ClientError(response, error.kwargs.get("name", "waiter")))
    return "time-out", f"time-out: {error}", CHECK_STATE


_SECRET_SETTING = re.compile(r"SECRET|TOKEN|ACCESS_KEY|PASSWORD", re.IGNORECASE)
"""Settings whose value must never be printed; botocore does not validate them as values anyway."""


def blame_setting(error: Exception, *, region_option: str | None, profile: str | None) -> SettingError | None:
    """The setting behind ``error``, raised while the AWS session and clients were made (before any request):
    ``--region``, an AWS_* variable or a key of the profile in the AWS config file, whose value is the one
    ``error`` rejects. None when no setting holds that value (the error is then not a setting's, perhaps a defect).

    botocore's ``SETTING_ERRORS`` carry the rejected value (``REJECTED_VALUE``); a bare ``ValueError`` (the
    ``int()`` of AWS_MAX_ATTEMPTS, an endpoint URL) ends its message with it (``...: 'abc'``, ``...: not-a-url``),
    so only a setting holding exactly that value is blamed, never one that merely appears in the text.
    """
    if isinstance(error, BotoCoreError):
        names = [name for kind, name in REJECTED_VALUE.items() if isinstance(error, kind)]
        rejected = {str(error.kwargs.get(name)) for name in names}
    elif isinstance(error, ValueError):
        _, separator, tail = str(error).rpartition(": ")
        rejected = {tail, tail.strip("'\"")} if separator else set()
    else:
        return None
    settings = [("--region", "region", region_option)]
    settings += [(name, name, value) for name, value in os.environ.items() if name.startswith("AWS_")]
    settings += _profile_settings(profile)
    blamed = [
        (name, key, value)
        for name, key, value in settings
        if value and value in rejected and not _SECRET_SETTING.search(key)
    ]
    if not blamed:
        return None
    _, key, value = blamed[0]
    return SettingError(" and ".join(name for name, _, _ in blamed), value, one_line(error), _setting_remedy(key))


def _profile_settings(profile: str | None) -> list[tuple[str, str, str]]:
    """``(where, key, value)`` of every key of the profile botocore uses (``profile``, else AWS_PROFILE, else
    ``default``), as the config file names it."""
    session = botocore.session.Session(profile=profile)
    try:
        config = session.get_scoped_config()
    except BotoCoreError:  # an unknown profile or a file that cannot be parsed: no key to blame
        return []
    where = f"of profile {session.profile or 'default'!r} in {session.get_config_variable('config_file')}"
    return [(f"{key} {where}", key, value) for key, value in config.items() if isinstance(value, str)]


def _setting_remedy(key: str) -> str:
    """What to do about a rejected setting: its right form, by what it sets, or else to drop it (where it is
    set: an AWS_* variable, or a key of the profile)."""
    if key in ("region", "AWS_REGION", "AWS_DEFAULT_REGION"):
        return REGION_REMEDY
    fix = (
        "give a full URL such as https://cloudformation.eu-west-1.amazonaws.com"
        if key.startswith("AWS_ENDPOINT_URL") or key == "endpoint_url"
        else f"correct {key}"
    )
    return f"{fix}, or unset {key}" if key.startswith("AWS_") else f"{fix}, or remove it from the profile"
