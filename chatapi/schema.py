"""The OpenAPI schema's error answers of every API path: the rate limits views declare, and the rest
(a drf-spectacular postprocessing hook)."""

from drf_spectacular.openapi import AutoSchema

# Views document their successes; the errors every API path can answer are the same few shapes
# (API_CONTRACT.md, Conventions), so they are added here once, where clients and the fuzzer see them.
ERROR_COMPONENTS = {
    "Error": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
        "description": "A single error.",
    },
    "FieldErrors": {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
        "description": "Validation errors, one list of messages per field (or header) name.",
    },
}
CREDENTIAL_PATHS = {"/api/v1/staff/token/", "/api/v1/staff/token/refresh/"}
BOT_CHECKED_PATHS = {"/api/v1/auth/email/", "/api/v1/chat/", "/api/v1/chat/stream/"}
_ERROR = {"$ref": "#/components/schemas/Error"}
_HEADER = {"schema": {"type": "string"}, "required": True}


def _error(description: str, schema: dict = _ERROR, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _errors_of(path: str, operation: dict) -> dict[str, dict]:
    parameters = {parameter["in"] for parameter in operation.get("parameters", [])}
    names = {parameter["name"] for parameter in operation.get("parameters", [])}
    secured = any(requirement for requirement in operation.get("security", []))
    errors: dict[str, dict] = {}
    if "requestBody" in operation or parameters & {"query", "header", "path"}:
        errors["400"] = _error(
            "Malformed or invalid input.", {"anyOf": [_ERROR, {"$ref": "#/components/schemas/FieldErrors"}]}
        )
    if secured or path in CREDENTIAL_PATHS:
        www = {"WWW-Authenticate": {**_HEADER, "description": "Bearer"}}
        errors["401"] = _error("Missing, malformed, tampered, expired or revoked credentials.", headers=www)
    if secured or path in BOT_CHECKED_PATHS:
        errors["403"] = _error("Not allowed for this caller (a visitor token on staff paths, a bot-like client).")
    if "path" in parameters or "page" in names:
        errors["404"] = _error("No such object, or no such page.")
    if "Idempotency-Key" in names:
        errors["409"] = _error("A request with this Idempotency-Key is still being answered.")
    if "requestBody" in operation:
        errors["413"] = _error("Request body too large.")
        errors["415"] = _error("Unsupported content type; send application/json.")
    errors["503"] = _error("Database (or, for new sessions, the shared cache) unavailable; retry shortly.")
    return errors


def error_responses_add(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: document each API operation's error answers."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(ERROR_COMPONENTS)
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                for status, response in _errors_of(path, operation).items():
                    operation["responses"].setdefault(status, response)
    return result


class ApiSchema(AutoSchema):
    """drf-spectacular's schema of a view, with a 429 wherever the view declares a rate limit."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is not None and self.view.get_throttles():
            retry = {"Retry-After": {**_HEADER, "description": "Seconds to wait."}}
            operation["responses"]["429"] = _error(
                "Rate limit (or, on chat, the session's message cap) reached.", headers=retry
            )
        return operation
