"""Fapws3 compatibility for scripts run by wsrun.

Unmodified Fapws3 programs import ``fapws._evwsgi`` (the server entry points),
``fapws.base`` (the per-request ``Environ`` and ``Start_response`` classes) and
``fapws.contrib.views`` / ``fapws.contrib.headers``. This package provides
those names on top of :mod:`wsrun`; ``wsrun script.py`` serves the routes a
script registers with ``fapws._evwsgi.wsgi_cb``.
"""

__all__: list[str] = []
