"""Fapws4 ``views``: :class:`Staticfile` is :class:`wsrun.views.Staticfile`."""

from wsrun.views import Staticfile

__all__ = ["Staticfile"]
