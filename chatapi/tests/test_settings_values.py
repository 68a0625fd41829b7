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
    assert result.stderr == "chatapi: refusing to start: INPUT_MARKUP_POLICY must be keep or strip, not 'sanitize'\n"


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
