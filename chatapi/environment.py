"""Readers of settings that refuse a malformed value with one line; for settings.py and gunicorn.conf.py.

They need no Django settings, so gunicorn's master reads its own with them before the app loads.
"""

from __future__ import annotations

import math
import re
import sys
import warnings
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured


def refuse_to_start(reason: str) -> None:
    """Stop the process with a one-line reason instead of a traceback."""
    sys.stderr.write(f"chatapi: refusing to start: {reason}\n")
    raise SystemExit(1)


class SettingsEnv(environ.Env):
    """django-environ's readers, refusing a malformed value with one line: the variable, its value, the form expected.

    An empty value counts as unset. Numbers are never negative; `minimum` raises the floor.
    """

    RATE = re.compile(r"^[1-9][0-9]*/(?:[1-9][0-9]*)?[smhd]$")  # what django-ratelimit reads, nothing it misreads
    ORIGIN = re.compile(r"^https?://[^/?#*@\s]+$")
    WILDCARD_ORIGIN = re.compile(r"^https?://(?:\*\.)?[^/?#*@\s]+$")
    TRUE, FALSE = {"true", "on", "yes", "y", "1"}, {"false", "off", "no", "n", "0"}

    def refuse(self, var: str, value: str, expected: str) -> None:
        refuse_to_start(f"{var}={value!r} is not valid: expected {expected}")

    def _raw(self, var: str) -> str | None:
        value = self.ENVIRON.get(var, "").strip()
        return value or None

    def int(self, var, default=environ.Env.NOTSET, *, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self._raw(var)
        if raw is None:
            return default
        if not re.fullmatch(r"[+-]?[0-9]+", raw) or not minimum <= int(raw) <= (maximum or int(raw)):
            self.refuse(var, raw, f"a whole number of {minimum} or more" + (f", up to {maximum}" if maximum else ""))
        return int(raw)

    def float(self, var, default=environ.Env.NOTSET, *, minimum: float = 0.0, above: bool = False) -> float:
        raw = self._raw(var)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < minimum or (above and value == minimum):
            self.refuse(var, raw, f"a number {'above' if above else 'of'} {minimum:g}{'' if above else ' or more'}")
        return value

    def decimal(self, var, default=None) -> Decimal | None:
        """A price or an amount of money: a plain number of 0 or more, read exactly (no float rounding)."""
        raw = self._raw(var)
        if raw is None:
            return default
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value < 0:
            self.refuse(var, raw, "a number of 0 or more, such as 0.15")
        return value

    def bool(self, var, default=environ.Env.NOTSET) -> bool:
        raw = self._raw(var)
        if raw is None:
            return default
        if raw.lower() not in self.TRUE | self.FALSE:
            self.refuse(var, raw, "true or false")
        return raw.lower() in self.TRUE

    def choice(self, var: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self._raw(var)
        value = default if raw is None else raw
        matched = [choice for choice in choices if choice.lower() == value.lower()]
        if not matched:
            self.refuse(var, value, f"{', '.join(choices[:-1])} or {choices[-1]}")
        return matched[0]

    def rate(self, var: str, default: str) -> str:
        """A rate limit, `N/s`, `N/m`, `N/h` or `N/d` (or `N/Km`: N per K minutes)."""
        value = self._raw(var) or default
        if not self.RATE.match(value):
            self.refuse(var, value, "N/s, N/m, N/h or N/d with N at least 1, for example 10/m")
        return value

    def origins(self, var: str, *, subdomains: bool = False) -> list[str]:
        """Comma-separated web origins: a scheme and a host, no path (with `subdomains`, `*.` before the host)."""
        values = [origin.strip() for origin in (self._raw(var) or "").split(",") if origin.strip()]
        pattern = self.WILDCARD_ORIGIN if subdomains else self.ORIGIN
        if any(not pattern.match(origin) for origin in values):
            self.refuse(var, self.ENVIRON[var], "origins such as https://www.example.com or http://localhost:3000")
        return values

    def http_url(self, var: str, default: str | None) -> str | None:
        value = self._raw(var) or default
        if value is not None and (urlsplit(value).scheme not in {"http", "https"} or not urlsplit(value).netloc):
            self.refuse(var, value, "an http:// or https:// URL")
        return value

    def db_url(self, var, default=environ.Env.NOTSET, engine=None) -> dict:
        return self._service_url(var, default, self.db_url_config, "ENGINE", DATABASE_ENGINES)

    def cache_url(self, var, default=environ.Env.NOTSET, backend=None) -> dict:
        return self._service_url(var, default, self.cache_url_config, "BACKEND", CACHE_BACKENDS)

    def _service_url(self, var: str, default: str, parse, kind: str, accepted: dict[str, str]) -> dict:
        value = self._raw(var) or default
        try:
            urlsplit(value).port  # noqa: B018 - raises on a port that is not a number
            with warnings.catch_warnings(action="ignore"):  # django-environ warns of what we refuse below
                config = parse(value)
        except (ValueError, KeyError, ImproperlyConfigured):
            config = {}
        if config.get(kind) not in accepted:
            shown = re.sub(r"(//[^/:@]*):[^/@]*@", r"\1:***@", value)  # never the password
            self.refuse(var, shown, " or ".join(accepted.values()))
        return config


DATABASE_ENGINES = {
    "django.db.backends.sqlite3": "sqlite:///PATH",
    "django.db.backends.postgresql": "postgres://USER:PASSWORD@HOST:PORT/NAME",
}
CACHE_BACKENDS = {
    "django.core.cache.backends.locmem.LocMemCache": "locmemcache://",
    "django_redis.cache.RedisCache": "redis://HOST:PORT/DB",
    "django.core.cache.backends.dummy.DummyCache": "dummycache://",
}
