"""Helpers of the end-to-end suite, one module per role.

* `paths`: where things are (the repo, the test apps, the binary) and `WAIT`, the one bound of
  every poll, with `wait_for`.
* `launcher`: `Server` / `Launcher`, runs of the binary that wait for readiness (every worker's
  "listening on" line), and `run_wsrun` for runs that end by themselves.
* `http`: raw-socket exchanges and a small HTTP/1.x response parser.
* `procfs`: /proc readers (worker pids, open and deleted files, memory).
* `wasm`: the built handler components and their helpers.
* `wsgi_unit`: fakes for the unit tests of the embedded Python package.
"""
