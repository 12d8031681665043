"""The one error tree of Daylite and its rendering in OpenAI's error format.

::

    DayliteError
    ├── InvalidRequestError        400 invalid_request_error
    │   ├── UnknownModelError      400 model_not_found
    │   └── InvalidHeaderError     400 invalid_header
    ├── AuthenticationError        401 invalid_api_key
    ├── PermissionDeniedError      403 permission_denied
    ├── InsufficientCreditsError   402 insufficient_credits
    ├── NotFoundError              404 not_found
    ├── MethodNotAllowedError      405 method_not_allowed
    ├── RequestTimeoutError        408 request_timeout
    ├── ClientClosedError          499 client_closed
    ├── PayloadTooLargeError       413 request_too_large
    ├── BudgetExceededError        429 budget_exceeded
    ├── RateLimitedError           429 rate_limit_exceeded
    ├── UpstreamError              502 backend_unavailable
    │   └── UpstreamTimeoutError   502 backend_timeout
    ├── UpstreamRejectedError      4xx relayed from a backend
    └── ServiceUnavailableError    503 service_unavailable

Domain code raises these; one handler turns any of them into a response.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class DayliteError(Exception):
    """Base of every error a client can receive."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str | None] = "internal_error"
    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.body())

    def headers(self) -> dict[str, str]:
        # The official SDKs obey this header; without it they retry 429s that
        # can only fail again and hide the real error behind a delay.
        return {} if self.retryable else {"x-should-retry": "false"}


class InvalidRequestError(DayliteError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"
    retryable = False


class UnknownModelError(InvalidRequestError):
    code = "model_not_found"


class InvalidHeaderError(InvalidRequestError):
    code = "invalid_header"


class AuthenticationError(DayliteError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"
    retryable = False


class PermissionDeniedError(DayliteError):
    status = 403
    type = "permission_error"
    code = "permission_denied"
    retryable = False


class InsufficientCreditsError(DayliteError):
    status = 402
    type = "insufficient_credits"
    code = "insufficient_credits"
    retryable = False


class NotFoundError(DayliteError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"
    retryable = False


class MethodNotAllowedError(DayliteError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"
    retryable = False


class RequestTimeoutError(DayliteError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"
    retryable = False


class ClientClosedError(DayliteError):
    """The client went away before its request was read; nobody sees the answer."""

    status = 499
    type = "invalid_request_error"
    code = "client_closed"
    retryable = False


class PayloadTooLargeError(DayliteError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"
    retryable = False


class BudgetExceededError(DayliteError):
    status = 429
    type = "budget_exceeded"
    code = "budget_exceeded"
    retryable = False


class RateLimitedError(DayliteError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class UpstreamError(DayliteError):
    status = 502
    type = "api_error"
    code = "backend_unavailable"
    retryable = True


class UpstreamTimeoutError(UpstreamError):
    code = "backend_timeout"


class UpstreamRejectedError(DayliteError):
    """A backend refused the request itself (4xx); relayed, never retried."""

    type = "invalid_request_error"
    code = "upstream_rejected"
    retryable = False

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        backend: str | None = None,
    ) -> None:
        super().__init__(message)
        self.instance_status = status
        self.instance_code = code
        self.backend = backend

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["code"] = self.instance_code or self.code
        return body


class ServiceUnavailableError(DayliteError):
    status = 503
    type = "api_error"
    code = "service_unavailable"
    retryable = True


def status_of(error: DayliteError) -> int:
    """The HTTP status to send for ``error``."""
    if isinstance(error, UpstreamRejectedError):
        return error.instance_status
    return error.status
