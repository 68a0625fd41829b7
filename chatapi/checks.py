"""System checks for deployment mistakes that Django cannot see by itself."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.caches)
def local_cache_with_many_processes(app_configs, **kwargs):
    if settings.CACHE_IS_LOCAL and settings.WEB_CONCURRENCY > 1:
        return [
            checks.Warning(
                "WEB_CONCURRENCY is above 1 but the cache is local memory: each process would keep "
                "its own rate limits, so visitors get several times the configured limits.",
                hint="Set CACHE_URL to a shared cache such as redis://127.0.0.1:6379/0.",
                id="chatapi.W001",
            )
        ]
    return []


# Django's own deploy check finds its clickjacking middleware by its import path; ours is that class
# run natively under ASGI (chatapi.middleware), so the check is ours too.
LEAN_SECURITY_MIDDLEWARE = ("chatapi.middleware.XFrameOptionsMiddleware",)


@checks.register(checks.Tags.security, deploy=True)
def security_middleware_installed(app_configs, **kwargs):
    return [
        checks.Warning(
            f"{name} is not in MIDDLEWARE: responses lack its security headers.",
            hint="Keep chatapi.settings.MIDDLEWARE as shipped.",
            id="chatapi.W002",
        )
        for name in LEAN_SECURITY_MIDDLEWARE
        if name not in settings.MIDDLEWARE
    ]
