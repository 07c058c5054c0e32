"""Fapws3 ``contrib`` helpers: :mod:`fapws.contrib.views` and :mod:`fapws.contrib.headers`."""

__all__: list[str] = []
