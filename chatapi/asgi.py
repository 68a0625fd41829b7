"""
ASGI config for chatapi project.

It exposes the ASGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/asgi/
"""

import os

from django.core.asgi import get_asgi_application
from django.core.signals import request_started
from django.db import close_old_connections, reset_queries

from chatapi.body_limit import ASGIBodyLimit
from chatapi.startup import server_start_run

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapi.settings")

# The body limit sits in front of Django: see chatapi.body_limit for why it cannot be a middleware.
application = ASGIBodyLimit(get_asgi_application())

# Django's handler gives each request's synchronous code a thread of its own, new for that request:
# as it starts there is no old connection to close and no query log to reset, and without these two
# synchronous receivers request_started costs no hop to a thread.
request_started.disconnect(close_old_connections)
request_started.disconnect(reset_queries)

# The server is starting (under gunicorn, once in the master, before it forks the workers): the steps
# the apps loaded above registered, such as loading the model client.
server_start_run()
