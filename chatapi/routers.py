"""The router every app's `urls.py` registers its viewsets on."""

from rest_framework.routers import SimpleRouter


class ApiRouter(SimpleRouter):
    """DRF's SimpleRouter whose paths work with and without the trailing slash (API_CONTRACT.md)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
