"""Domain errors: what a service refuses, with the status, detail and headers the API answers it with.

Services and selectors raise these and never import DRF; chatapi.exceptions maps every one to DRF's
JSON shape. Each app defines its own subclasses next to the services that raise them.
"""

from collections.abc import Mapping

RATE_LIMITED = "Too many requests; please slow down."
SERVICE_UNAVAILABLE = "Service temporarily unavailable; please retry shortly."
# The challenge every other 401 of the API carries: simplejwt's authenticators answer it.
BEARER_CHALLENGE = 'Bearer realm="api"'


class DomainError(Exception):
    """A refusal: `status_code` and `detail` for the answer, `code` for machines, `retry_after` in seconds.

    With `field` set, the answer is a validation error of that input field: `{field: [detail]}`.
    """

    status_code: int = 400
    default_detail: str = "Bad request."
    code: str = "invalid"
    retry_after: int | None = None
    field: str | None = None

    def __init__(self, detail: str | None = None, *, retry_after: float | None = None):
        self.detail = self.default_detail if detail is None else detail
        if retry_after is not None:
            self.retry_after = max(1, int(retry_after))  # whole seconds, never "retry now"
        super().__init__(self.detail)

    @property
    def body(self) -> dict:
        return {self.field: [self.detail]} if self.field else {"detail": self.detail}

    @property
    def headers(self) -> Mapping[str, str]:
        headers = {}
        if self.status_code == 401:
            headers["WWW-Authenticate"] = BEARER_CHALLENGE
        if self.retry_after:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class LimitExceeded(DomainError):
    """A 429 whose Retry-After is `retry_after` seconds."""

    status_code = 429
    default_detail = RATE_LIMITED
    code = "limit_exceeded"

    def __init__(self, detail: str | None = None, *, retry_after: float):
        super().__init__(detail, retry_after=retry_after)


class ServiceUnavailable(DomainError):
    status_code = 503
    default_detail = SERVICE_UNAVAILABLE
    code = "service_unavailable"
