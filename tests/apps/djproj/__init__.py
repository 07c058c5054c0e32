"""A minimal real Django project used by tests/test_django.py."""
