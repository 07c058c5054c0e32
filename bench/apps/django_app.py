"""A one-module Django site for bench/apps.sh: `django_app:app`, `GET /hello/?name=wsrun`.

A view that reads a query parameter and renders a small template (`templates/hello.html`)
through Django's template engine, with Django's default middleware stack minus sessions,
auth and CSRF (no database): URL resolving, request and response objects, template
rendering.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    INSTALLED_APPS=[],
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [str(Path(__file__).resolve().parent / "templates")],
        }
    ],
    USE_TZ=True,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.shortcuts import render  # noqa: E402
from django.urls import path  # noqa: E402


def hello(request: HttpRequest) -> HttpResponse:
    """Render the greeting for `?name=` with three items."""
    name = request.GET.get("name", "world")
    return render(request, "hello.html", {"name": name, "items": ["one", "two", "three"]})


urlpatterns = [path("hello/", hello)]

app = get_wsgi_application()
