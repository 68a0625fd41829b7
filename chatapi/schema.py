"""OpenAPI descriptions of our own authentication classes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class VisitorSessionScheme(OpenApiAuthenticationExtension):
    target_class = "sessions_app.authentication.VisitorSessionAuthentication"
    name = "visitorToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The access_token from POST /api/v1/auth/email.",
        }
