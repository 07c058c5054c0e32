"""URL routes of the Django test project."""

from __future__ import annotations

from django.urls import path

from djproj import views

urlpatterns = [
    path("", views.index),
    path("form/", views.form),
    path("exempt/", views.exempt),
    path("upload/", views.upload),
    path("cookie/set/", views.cookie_set),
    path("cookie/get/", views.cookie_get),
    path("redirect/", views.go),
    path("target/", views.target),
    path("stream/", views.stream),
]
