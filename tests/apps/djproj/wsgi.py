"""WSGI entry point of the test Django project: `djproj.wsgi:application`."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproj.settings")

application = get_wsgi_application()
