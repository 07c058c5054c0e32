"""Minimal Django settings: no database, DEBUG off."""

from __future__ import annotations

import os
import tempfile

DEBUG = False
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "wsrun-e2e-tests-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz"
ROOT_URLCONF = "djproj.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
USE_TZ = True
# Small, so uploads above it go through Django's temporary files too.
FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
FILE_UPLOAD_TEMP_DIR = os.environ.get("WSRUN_TEST_DJANGO_TMP", tempfile.gettempdir())
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
