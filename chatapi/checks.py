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


# Django's own deploy checks find its security and clickjacking middleware by their import paths;
# ours are those classes run natively under ASGI (chatapi.middleware), so these checks are ours too.
LEAN_SECURITY_MIDDLEWARE = ("chatapi.middleware.SecurityMiddleware", "chatapi.middleware.XFrameOptionsMiddleware")
DJANGO_SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"


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


@checks.register(checks.Tags.security, deploy=True)
def security_settings(app_configs, **kwargs):
    """Django's checks of SecurityMiddleware's settings (HSTS, HTTPS redirect, nosniff, referrer and
    opener policies), run as if Django's class were listed: they skip themselves when it is not."""
    from django.core.checks.security import base
    from django.test.utils import override_settings

    ours = LEAN_SECURITY_MIDDLEWARE[0]
    if ours not in settings.MIDDLEWARE:
        return []
    middleware = [DJANGO_SECURITY_MIDDLEWARE if name == ours else name for name in settings.MIDDLEWARE]
    settings_checks = (
        base.check_sts, base.check_sts_include_subdomains, base.check_sts_preload, base.check_content_type_nosniff,
        base.check_ssl_redirect, base.check_referrer_policy, base.check_cross_origin_opener_policy,
    )  # fmt: skip
    with override_settings(MIDDLEWARE=middleware):
        return [warning for check in settings_checks for warning in check(app_configs)]
