"""Fetch the pages a newcomer opens first and every file they load; report each answer that is not right.

Against a running server (CI): `python -m testing.page_crawl http://127.0.0.1:8000`, exit status 1 on
any problem. Tests pass `crawl` the Django test client's fetch instead of a socket.
"""

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

# The README's first pages, the API's own documents, and the icon every browser asks for.
PAGES = ["/", "/admin/login/", "/api/v1/docs", "/api/v1/schema", "/health", "/favicon.ico"]
MISSING_STATIC_FILE = "/static/chat_app/no-such-file.js"
CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
# A script's quoted bare file name ("widget-api.js"): widget.js loads its parts and stylesheet beside itself
# that way. Names with a folder or a scheme are left alone: a script may name those for other purposes.
SCRIPT_FILE_NAME = re.compile(r"""(['"])([\w-]+(?:\.[\w-]+)*\.(?:js|css))\1""")
JAVASCRIPT = ("text/javascript", "application/javascript")
SERVER_ERROR_ACCESS_LINE = re.compile(r'" 5\d\d\b')  # `"GET / HTTP/1.1" 500`, whatever the worker type


@dataclass(frozen=True)
class Fetched:
    status: int
    content_type: str
    body: bytes


Fetch = Callable[[str], Fetched]


class _References(HTMLParser):
    """What a page makes the browser load: every `src`, and `href` on <link> (styles, icons)."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name == "src" or (name == "href" and tag == "link")):
                self.found.append(value)


def references(url: str, fetched: Fetched) -> list[str]:
    """The same-site paths (with query) that a page, a stylesheet or a script loads, resolved against its URL."""
    if fetched.content_type.startswith("text/html"):
        parser = _References()
        parser.feed(fetched.body.decode("utf-8", errors="replace"))
        found = parser.found
    elif fetched.content_type.startswith("text/css"):
        found = [match.group(2) for match in CSS_URL.finditer(fetched.body.decode("utf-8", errors="replace"))]
    elif fetched.content_type.startswith(JAVASCRIPT):
        text = fetched.body.decode("utf-8", errors="replace")
        found = [match.group(2) for match in SCRIPT_FILE_NAME.finditer(text)]
    else:
        return []
    paths = []
    for reference in found:
        if reference.startswith(("data:", "#")):
            continue
        target = urlsplit(urljoin(url, reference))
        if target.netloc and target.netloc != urlsplit(url).netloc:
            continue  # another site: none is expected, and none is fetched from here
        paths.append(target.path + (f"?{target.query}" if target.query else ""))
    return paths


def crawl(fetch: Fetch, *, base: str = "http://testserver") -> dict[str, Fetched]:
    """Every page of PAGES and everything it loads (stylesheets' images and fonts too), by path."""
    seen: dict[str, Fetched] = {}
    queue = list(PAGES)
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen[path] = fetched = fetch(path)
        if fetched.status == 200:
            queue.extend(reference for reference in references(base + path, fetched) if reference not in seen)
    return seen


def problems(seen: dict[str, Fetched], missing: Fetched) -> list[str]:
    """Each path that did not answer 200, and a missing static file that did not answer 404."""
    found = [f"{path}: {fetched.status}" for path, fetched in seen.items() if fetched.status != 200]
    if missing.status != 404:
        found.append(f"{MISSING_STATIC_FILE} (missing on purpose): {missing.status}, not 404")
    return found


def log_problems(log_text: str) -> list[str]:
    """Each 5xx answer in a server's access lines, and each error or traceback it logged."""
    found = []
    for line in log_text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        level = record.get("level") if isinstance(record, dict) else None
        if SERVER_ERROR_ACCESS_LINE.search(line) or level in {"ERROR", "CRITICAL"} or "Traceback" in line:
            found.append(line[:300])
    return found


def http_fetch(base: str) -> Fetch:
    def fetch(path: str) -> Fetched:
        try:
            with urllib.request.urlopen(base + path, timeout=30) as answer:  # noqa: S310 - our own http server
                return Fetched(answer.status, answer.headers.get("Content-Type", ""), answer.read())
        except urllib.error.HTTPError as error:
            return Fetched(error.code, error.headers.get("Content-Type", ""), error.read())

    return fetch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the server's root, such as http://127.0.0.1:8000")
    parser.add_argument("--server-log", help="the server's output so far, checked after the crawl")
    arguments = parser.parse_args()
    base = arguments.base.rstrip("/")
    fetch = http_fetch(base)
    seen = crawl(fetch, base=base)
    found = problems(seen, fetch(MISSING_STATIC_FILE))
    if arguments.server_log:
        with open(arguments.server_log, encoding="utf-8", errors="replace") as log:
            found += [f"server log: {line}" for line in log_problems(log.read())]
    for line in found:
        print(f"page_crawl: {line}")
    print(f"page_crawl: {len(seen)} paths fetched, {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
