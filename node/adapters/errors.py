"""Errors of the chain adapters, each tagged with whose fault it is.

Peer's fault (:class:`~node.core.errors.RemoteError`): an endpoint is unreachable or too slow, rate
limits us, answers 5xx, sends a malformed body, or returns a JSON-RPC error. Our fault
(:class:`~node.core.errors.LocalError`): the adapter was used while stopped.
"""

from __future__ import annotations

from node.core import errors

#: JSON-RPC error codes worth retrying on another endpoint (server-side trouble, not our request).
RETRYABLE_RPC_CODES = frozenset(
    {errors.SERVER_ERROR, errors.INTERNAL_ERROR, errors.LIMIT_EXCEEDED, errors.RESOURCE_UNAVAILABLE}
)


class AdapterError(errors.RemoteError):
    """Root of the peer-side adapter errors; ``endpoint`` names the URL when one is to blame."""

    rpc_code = errors.INTERNAL_ERROR

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(f"{endpoint}: {message}" if endpoint else message)
        self.endpoint = endpoint


class EndpointUnavailable(AdapterError):
    """Connection refused/reset, or no answer within the request timeout."""


class RateLimited(AdapterError):
    """HTTP 429; ``retry_after_s`` is the server's ``Retry-After`` (None if absent or
    unparsable)."""

    def __init__(
        self, message: str, *, endpoint: str | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.retry_after_s = retry_after_s


class ServerBusy(AdapterError):
    """HTTP 5xx or another non-200 status."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status: int = 503,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.status = status
        self.retry_after_s = retry_after_s


class MalformedResponse(AdapterError):
    """The body is not JSON, is truncated, has the wrong id or shape, or a result of the wrong
    type."""


class RpcFailure(AdapterError):
    """A well-formed JSON-RPC error response."""

    def __init__(
        self, code: int, message: str, *, data: object = None, endpoint: str | None = None
    ) -> None:
        super().__init__(f"JSON-RPC error {code}: {message}", endpoint=endpoint)
        self.code = code
        self.rpc_message = message
        self.rpc_data = data

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_RPC_CODES


class AllEndpointsFailed(AdapterError):
    """Every endpoint failed for every attempt; ``last`` is the final underlying error."""

    def __init__(self, message: str, last: AdapterError | None) -> None:
        super().__init__(f"{message}: {last}" if last else message)
        self.last = last


class BudgetExceeded(AllEndpointsFailed):
    """The caller's time budget for the whole call ran out (attempts in flight were abandoned);
    ``last`` is the last error seen before, if any."""


class AdapterStopped(errors.LocalError):
    """A call was made on an adapter that is not running."""
