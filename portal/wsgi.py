"""WSGI entry point for gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.prod")
application = get_wsgi_application()

from portal.core.db import serve_web_requests  # noqa: E402 (needs the settings loaded above)

serve_web_requests()
