"""The staff console's site: Django's admin, with failed log-ins limited per client and per username."""

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from chatapi.errors import LimitExceeded
from chatapi.ratelimit import LimitUnavailable, client_ip_key, rate_limit_check, rate_limit_count

ADMIN_LOGIN_REFUSED = "Too many failed log-ins from here. Try again in {wait} seconds."


def admin_login_limits(username: str) -> list[dict]:
    """The two counts a failed log-in adds to: its client's, across usernames, and the username's from that client.

    A username is never counted across clients: that would let anyone lock a staff member out from
    anywhere by failing in their name (SECURITY.md, "Admin log-in").
    """
    name = username.casefold()

    def username_from_client_key(group: str, request: HttpRequest) -> str:
        return f"{client_ip_key(group, request)} {name}"

    rate = settings.ADMIN_LOGIN_RATE_LIMIT
    return [
        {"group": "admin-login-client", "key": client_ip_key, "rate": rate},
        {"group": "admin-login-user", "key": username_from_client_key, "rate": rate},
    ]


class AdminLoginForm(AdminAuthenticationForm):
    """Checks the limits before the password, and counts the attempt only when it fails.

    A client past its limit gets the form back with the reason and no password check, so a refused
    guess learns nothing; `refusal` tells the site which status to answer.
    """

    refusal: LimitExceeded | LimitUnavailable | None = None

    def clean(self):
        limits = admin_login_limits(self.cleaned_data.get("username") or "")
        try:
            for limit in limits:
                rate_limit_check(self.request, **limit)
        except (LimitExceeded, LimitUnavailable) as refused:
            self.refusal = refused
            message = refused.detail
            if refused.status_code == 429:
                message = ADMIN_LOGIN_REFUSED.format(wait=refused.retry_after)
            raise ValidationError(message, code=refused.code) from refused
        try:
            return super().clean()
        except ValidationError:  # wrong password, unknown user, inactive or not staff
            for limit in limits:
                rate_limit_count(self.request, **limit)
            raise


class ChatAdminSite(admin.AdminSite):
    login_form = AdminLoginForm

    def login(self, request: HttpRequest, extra_context=None):
        """Django's log-in view; a refused attempt gets the same page with 429 (or 503) and Retry-After."""
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        refusal = getattr(form, "refusal", None)
        if refusal is not None:
            response.status_code = refusal.status_code
            response["Retry-After"] = str(refusal.retry_after)
        return response
