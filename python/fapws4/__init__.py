"""Fapws4 compatibility for scripts run by wsrun.

Fapws4 scripts import from ``fapws4.base``, ``fapws4.views`` and
``fapws4.headers``; these modules map those names onto :mod:`wsrun`.
"""

__all__: list[str] = []
