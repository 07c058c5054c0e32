"""`wsrun.views.Staticfile` mounted as a WSGI app; root from $WSRUN_TEST_STATIC_ROOT."""

from __future__ import annotations

import os

from wsrun.views import Staticfile

app = Staticfile(os.environ["WSRUN_TEST_STATIC_ROOT"])
cached = Staticfile(os.environ["WSRUN_TEST_STATIC_ROOT"], maxage=3600)
