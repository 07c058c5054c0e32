"""Fapws3 ``contrib.views``: :class:`Staticfile` on top of :class:`wsrun.views.Staticfile`.

Fapws3 served ``rootpath + PATH_INFO``. Mounted the documented way (a root
directory and a prefix that agree on the trailing ``/``, or a single file as
the root) this is the file wsrun's :class:`~wsrun.views.Staticfile` serves, so
the class below only keeps Fapws3's signature (``rootpath`` may be omitted,
meaning the current directory; ``maxage`` may be any number of seconds).

What wsrun does better: ``..`` and symlinks leaving the root give 404,
``Cache-Control: max-age`` holds the number of seconds (Fapws3 sent an
absolute timestamp by mistake), the ETag is a quoted entity-tag honoured by
``If-None-Match`` with 304, and ``If-Modified-Since`` is honoured too.
"""

import os

from wsrun.views import Staticfile as _WsrunStaticfile

__all__ = ["Staticfile"]


class Staticfile(_WsrunStaticfile):
    """Serves the files under ``rootpath`` (or the file ``rootpath`` itself).

    Usage, as in Fapws3::

        evwsgi.wsgi_cb(("/static/", views.Staticfile("public/", maxage=3600)))
        evwsgi.wsgi_cb(("/form", views.Staticfile("form.html")))
    """

    __slots__ = ()

    def __init__(
        self, rootpath: str | os.PathLike[str] = "", maxage: int | float | None = None
    ) -> None:
        super().__init__(
            rootpath or os.curdir,
            maxage=None if maxage is None else max(0, int(maxage)),
        )

    @property
    def rootpath(self) -> str:
        """The root as given (Fapws3's attribute name)."""
        return self.root
