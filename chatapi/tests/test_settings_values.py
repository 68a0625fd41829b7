"""Settings that refuse bad values with one line, and ones read from files."""

import pytest

from sessions_app.tests.test_settings import manage, strong_secret


@pytest.mark.parametrize(
    ("name", "value"),
    [("JWT_ALGORITHM", "none"), ("JWT_EXPIRE_HOURS", "0"), ("INPUT_PATTERN_POLICY", "maybe")],
)
def test_settings_refuse_invalid_value_with_one_line(name, value):
    result = manage("check", "--tag", "caches", SECRET_KEY=strong_secret(), **{name: value})

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert name in result.stderr


def test_settings_refuse_unknown_markup_policy_with_one_line():
    result = manage("check", "--tag", "caches", SECRET_KEY=strong_secret(), INPUT_MARKUP_POLICY="sanitize")

    assert result.returncode == 1
    assert (
        result.stderr
        == "chatapi: refusing to start: INPUT_MARKUP_POLICY='sanitize' is not valid: expected keep or strip\n"
    )


def test_settings_refuse_unreadable_system_prompt_file(tmp_path):
    result = manage("check", "--tag", "caches", SECRET_KEY=strong_secret(), SYSTEM_PROMPT=f"@{tmp_path}/missing.txt")

    assert result.returncode == 1
    assert "SYSTEM_PROMPT" in result.stderr


def test_settings_read_system_prompt_and_env_file(tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("  You answer in haiku.  \n", encoding="utf-8")
    env_file = tmp_path / ".env"
    env_file.write_text(f"SECRET_KEY={strong_secret()}\nSYSTEM_PROMPT=@{prompt}\n", encoding="utf-8")

    result = manage("shell", "-c", "from django.conf import settings; print(repr(settings.SYSTEM_PROMPT))",
                    ENV_FILE=str(env_file))  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "'You answer in haiku.'"


def test_settings_https_only_without_proxy_trusts_no_forwarded_proto():
    result = manage(
        "shell", "-c", "from django.conf import settings; print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))",
        SECRET_KEY=strong_secret(), HTTPS_ONLY="True",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "None"


def test_settings_admin_login_rate_limit_defaults_to_five_a_minute_and_reads_the_environment():
    read = "from django.conf import settings; print(settings.ADMIN_LOGIN_RATE_LIMIT)"

    default = manage("shell", "-c", read, SECRET_KEY=strong_secret())
    configured = manage("shell", "-c", read, SECRET_KEY=strong_secret(), ADMIN_LOGIN_RATE_LIMIT="20/h")

    assert default.stdout.strip().splitlines()[-1] == "5/m", default.stderr
    assert configured.stdout.strip().splitlines()[-1] == "20/h", configured.stderr


# One example of each kind of malformed value: the variable, what was set, and a piece of the expected form.
MALFORMED = [
    ("CORS_ALLOWED_ORIGINS", "example.com", "https://"),
    ("CORS_ALLOWED_ORIGINS", "https://ok.example.com,www.example.com", "https://"),
    ("CORS_ALLOWED_ORIGINS", "https://example.com/chat", "https://"),
    ("CORS_ALLOWED_ORIGINS", "ftp://example.com", "https://"),
    ("CSRF_TRUSTED_ORIGINS", "admin.example.com", "https://"),
    ("AUTH_RATE_LIMIT", "10/week", "N/m"),
    ("CHAT_RATE_LIMIT", "10/x", "N/m"),
    ("CHAT_RATE_LIMIT", "ten/m", "N/m"),
    ("AUTH_RATE_LIMIT", "0/m", "N/m"),
    ("ADMIN_LOGIN_RATE_LIMIT", "5/fortnight", "N/m"),
    ("MAX_MESSAGE_LENGTH", "lots", "whole number"),
    ("MAX_MESSAGE_LENGTH", "0", "whole number of 1 or more"),
    ("NUM_PROXIES", "-1", "whole number of 0 or more"),
    ("DISCORD_CHANNEL_ID", "#general", "whole number"),
    ("LLM_TIMEOUT", "soon", "number above 0"),
    ("LLM_TIMEOUT", "0", "number above 0"),
    ("LLM_TEMPERATURE", "nan", "number of 0 or more"),
    ("LLM_TEMPERATURE", "-0.5", "number of 0 or more"),
    ("RATE_LIMITING_ENABLED", "maybe", "true or false"),
    ("HTTPS_ONLY", "Treu", "true or false"),
    ("LOG_LEVEL", "verbose", "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ("LOG_FORMAT", "xml", "json or text"),
    ("DATABASE_URL", "mysql://app@db/chat", "postgres://"),
    ("DATABASE_URL", "not a url", "postgres://"),
    ("DATABASE_URL", "postgres://app@db:fivefour/chat", "postgres://"),
    ("CACHE_URL", "memcache://127.0.0.1:11211", "redis://"),
    ("CACHE_URL", "redis://127.0.0.1:port/0", "redis://"),
    ("LLM_API_BASE", "127.0.0.1:8001/v1", "http://"),
    ("DISCORD_API_BASE", "discord.com/api/v10", "http://"),
    ("LLM_INPUT_COST_PER_MILLION", "-0.15", "number of 0 or more"),
    ("LLM_OUTPUT_COST_PER_MILLION", "cheap", "number of 0 or more"),
    ("LLM_OUTPUT_COST_PER_MILLION", "Infinity", "number of 0 or more"),
    ("DAILY_COST_BUDGET_USD", "NaN", "number of 0 or more"),
    ("DAILY_COST_BUDGET_USD", "$5", "number of 0 or more"),
    ("SESSION_TOKEN_BUDGET", "-100", "whole number of 0 or more"),
    ("SESSION_TOKEN_BUDGET", "1e6", "whole number"),
]


@pytest.mark.parametrize(("name", "value", "expected"), MALFORMED)
def test_settings_refuse_a_malformed_value_with_one_line_naming_it(name, value, expected):
    result = manage("check", "--tag", "caches", SECRET_KEY=strong_secret(), **{name: value})

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0] and repr(value) in lines[0] and expected in lines[0]


def test_settings_refusal_hides_a_database_password():
    result = manage("check", "--tag", "caches", SECRET_KEY=strong_secret(), DATABASE_URL="mysql://app:hunter2pw@db/x")

    assert result.returncode == 1
    assert "DATABASE_URL" in result.stderr and "hunter2pw" not in result.stderr


def test_settings_accept_every_valid_form():
    result = manage(
        "shell", "-c",
        "from django.conf import settings as s; print(s.CORS_ALLOWED_ORIGINS, s.AUTH_RATE_LIMIT, s.CHAT_RATE_LIMIT,"
        " s.MAX_MESSAGE_LENGTH, s.LLM_TIMEOUT, s.HTTPS_ONLY, s.RATE_LIMITING_ENABLED, s.LOG_LEVEL,"
        " s.DATABASES['default']['ENGINE'])",
        SECRET_KEY=strong_secret(), CORS_ALLOWED_ORIGINS="https://www.example.com, http://localhost:3000",
        CSRF_TRUSTED_ORIGINS="https://*.example.com", AUTH_RATE_LIMIT="100/h", CHAT_RATE_LIMIT="10/5m",
        MAX_MESSAGE_LENGTH="", LLM_TIMEOUT="2.5", HTTPS_ONLY="on", RATE_LIMITING_ENABLED="0", LOG_LEVEL="warning",
        DATABASE_URL="", CACHE_URL="redis://127.0.0.1:6379/9",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "['https://www.example.com', 'http://localhost:3000'] 100/h 10/5m 4000 2.5 True False WARNING"
        " django.db.backends.sqlite3"  # empty: as if unset
    )


def test_settings_read_prices_and_budgets_exactly():
    result = manage(
        "shell", "-c",
        "from django.conf import settings as s; print(s.LLM_INPUT_COST_PER_MILLION, s.LLM_OUTPUT_COST_PER_MILLION,"
        " s.SESSION_TOKEN_BUDGET, s.DAILY_COST_BUDGET_USD)",
        SECRET_KEY=strong_secret(), LLM_INPUT_COST_PER_MILLION="0.1", LLM_OUTPUT_COST_PER_MILLION="0",
        SESSION_TOKEN_BUDGET="20000", DAILY_COST_BUDGET_USD="2.50",
    )  # fmt: skip
    unset = manage(
        "shell", "-c",
        "from django.conf import settings as s; print(s.LLM_INPUT_COST_PER_MILLION, s.SESSION_TOKEN_BUDGET,"
        " s.DAILY_COST_BUDGET_USD)",
        SECRET_KEY=strong_secret(),
    )  # fmt: skip

    assert result.stdout.strip().splitlines()[-1] == "0.1 0 20000 2.50", (
        result.stderr
    )  # Decimal: 0.1, never 0.1000000001
    assert unset.stdout.strip().splitlines()[-1] == "None 0 0", unset.stderr
