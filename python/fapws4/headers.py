"""Fapws4 ``headers``: :func:`redirect` is :func:`wsrun.headers.redirect`."""

from wsrun.headers import redirect

__all__ = ["redirect"]
