"""Jobs and timers from WebAssembly: the `jobs` handler (handlers/jobs) calls `wsrun:services`.

One server holds a Python route (`tests/apps/jobs_app.py` at /app, whose `/app/sink` appends
`sink ID ATTEMPT PID TIME METHOD BODY` to the call log), the `jobs` handler at /jobs, `hello`
(which imports nothing of wsrun's) at /hello, and two tenants. Every test uses its own marker
in bodies and timer names, so they share the server. The `jobs` handler prints
`jobs: work job=ID attempt=A method=M body=B` when a job calls it; wsrun writes that line to
its log prefixed with the handler's label. Also: the examples/jobs demo.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from support.launcher import Launcher, Server
from support.paths import APPS, REPO, WAIT, wait_for, wsrun_bin
from support.wasm import hello_body, state_args, wasm_handler

_MARKS = itertools.count(1)


def marker(prefix: str) -> str:
    """A body and name no other test uses."""
    return f"{prefix}-{time.monotonic_ns()}-{next(_MARKS)}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("wasm-jobs")
    jobs, hello = wasm_handler("jobs"), wasm_handler("hello")
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
workers = 1

[[route]]
prefix = "/app"
python = "jobs_app:app"

[[route]]
prefix = "/jobs"
wasm = "{jobs}"
min_timer_period = "100ms"

[[route]]
prefix = "/hello"
wasm = "{hello}"

[[tenant]]
name = "alpha"
hosts = ["a.test", "www.a.test"]
min_timer_period = "100ms"

  [[tenant.route]]
  prefix = "/jobs"
  wasm = "{jobs}"

  [[tenant.route]]
  prefix = "/alpha-work"
  wasm = "{jobs}"

[[tenant]]
name = "beta"
hosts = ["b.test"]

  [[tenant.route]]
  prefix = "/beta-work"
  wasm = "{jobs}"
"""
    )
    server = Server(tmp, name="jobs")
    try:
        server.start(["-c", str(cfg), "--pythonpath", str(APPS), *state_args(tmp)], cwd=tmp)
        yield server
    finally:
        server.stop()


def call(srv: Server, path: str, body: str = "", host: str | None = None) -> requests.Response:
    headers = {"Host": host} if host else {}
    return requests.post(srv.url + path, data=body.encode(), headers=headers, timeout=WAIT)


def sinks(srv: Server, body: str) -> list[list[str]]:
    """The call log's `sink` lines whose body is `body`, split into fields."""
    lines = [line.split() for line in srv.calls() if line.startswith("sink ")]
    return [fields for fields in lines if fields[-1] == body]


def worked(srv: Server, body: str) -> list[str]:
    """The log lines the `jobs` handler printed for jobs carrying `body`."""
    return [line for line in srv.log().splitlines() if "jobs: work " in line and body in line]


def test_job_from_wasm_reaches_python(srv: Server) -> None:
    mark = marker("to-python")
    r = call(srv, "/jobs/defer?to=/app/sink", mark)
    assert r.status_code == 200, r.text
    job_id = r.text
    assert job_id.isdigit() and r.headers["x-job-id"] == job_id
    assert wait_for(lambda: sinks(srv, mark)), srv.log()[-2000:]
    [[_, seen_id, attempt, _pid, _at, method, _body]] = sinks(srv, mark)
    # The Python route got the job's id and attempt in wsrun-job-id / wsrun-job-attempt.
    assert (seen_id, attempt, method) == (job_id, "1", "POST")


def test_wasm_job_method_headers_and_delay(srv: Server) -> None:
    mark = marker("delayed")
    started = time.time()
    r = call(srv, "/jobs/defer?to=/app/sink&method=PUT&delay=400&max_attempts=1", mark)
    assert r.status_code == 200, r.text
    assert wait_for(lambda: sinks(srv, mark))
    [[_, _, _, _, at, method, _]] = sinks(srv, mark)
    assert method == "PUT"
    assert float(at) >= started + 0.4, float(at) - started


def enqueue_from_python(srv: Server, path: str, mark: str, extra: str = "") -> str:
    """Has the Python app enqueue a job for `path` with body `mark`; returns the job's id."""
    target = quote(path, safe="")
    r = requests.get(f"{srv.url}/app/enqueue?path={target}&body={mark}{extra}", timeout=WAIT)
    assert r.status_code == 200, r.text
    return r.text


def later_delivery(srv: Server, delay: float) -> None:
    """Has a job delivered `delay` seconds from now and waits for it: the later event after
    which an absence may be asserted."""
    mark = marker("later")
    enqueue_from_python(srv, "/app/sink", mark, f"&delay={delay}")
    assert wait_for(lambda: sinks(srv, mark)), srv.log()[-2000:]


def test_job_from_python_reaches_wasm_and_comes_back(srv: Server) -> None:
    mark = marker("round-trip")
    python_job = enqueue_from_python(srv, "/jobs/work?then=/app/sink", mark)
    # The WASM route ran as that job (its id and attempt in the request headers) ...
    expected = f"handler `jobs` on /jobs stdout: jobs: work job={python_job} attempt=1"
    assert wait_for(lambda: any(expected in line for line in worked(srv, mark))), srv.log()
    # ... and queued a job of its own back to Python, which carries what it saw.
    echoed = f"wasm-saw:job={python_job}:attempt=1:{mark}"
    assert wait_for(lambda: sinks(srv, echoed))
    [[_, wasm_job, attempt, *_]] = sinks(srv, echoed)
    assert attempt == "1" and int(wasm_job) > int(python_job)


def test_failing_wasm_job_is_retried(srv: Server) -> None:
    mark = marker("retried")
    job_id = enqueue_from_python(srv, "/jobs/work?status=500", mark, "&max_attempts=2")
    # Two attempts of the same job (the retry after the default backoff of about a second).
    assert wait_for(lambda: len(worked(srv, mark)) >= 2), worked(srv, mark)
    attempts = [line.split("attempt=")[1].split()[0] for line in worked(srv, mark)]
    assert attempts == ["1", "2"]
    assert all(f"job={job_id} " in line for line in worked(srv, mark))
    later_delivery(srv, 2.5)  # past a third attempt's backoff (2 s, jittered)
    assert len(worked(srv, mark)) == 2, "max_attempts=2 allows no third delivery"


def test_wasm_timer_every_then_cancel(srv: Server) -> None:
    mark = marker("every")
    r = call(srv, f"/jobs/every?name={mark}&period=200&to=/app/sink", mark)
    assert (r.status_code, r.text) == (200, "set")
    assert wait_for(lambda: len(sinks(srv, mark)) >= 3), sinks(srv, mark)
    assert call(srv, f"/jobs/cancel?name={mark}").text == "true"
    later_delivery(srv, 0.3)  # a job already queued may still arrive
    settled = len(sinks(srv, mark))
    later_delivery(srv, 0.8)  # four periods
    assert len(sinks(srv, mark)) == settled, "the timer kept firing after cancel"
    # Every firing is its own job, delivered once.
    ids = [fields[1] for fields in sinks(srv, mark)]
    assert len(set(ids)) == len(ids)
    assert call(srv, f"/jobs/cancel?name={mark}").text == "false"


def test_wasm_timer_once(srv: Server) -> None:
    mark = marker("once")
    started = time.time()
    r = call(srv, f"/jobs/once?name={mark}&delay=300&to=/app/sink", mark)
    assert (r.status_code, r.text) == (200, "set")
    assert wait_for(lambda: sinks(srv, mark))
    later_delivery(srv, 0.8)
    [[_, _, _, _, at, _, _]] = sinks(srv, mark)
    assert float(at) >= started + 0.3
    # A one-shot timer is gone once it has fired.
    assert call(srv, f"/jobs/cancel?name={mark}").text == "false"


def test_unknown_route_is_a_no_route_error_for_the_guest(srv: Server) -> None:
    r = call(srv, "/jobs/defer?to=/nowhere/x%3Fy=1", "never")
    assert r.status_code == 400
    assert r.text == 'no-route: no route serves "/nowhere/x"\n'
    r = call(srv, "/jobs/every?name=never&period=100&to=/nowhere")
    assert (r.status_code, r.text) == (400, 'no-route: no route serves "/nowhere"\n')
    r = call(srv, "/jobs/once?name=never&delay=100&to=/nowhere")
    assert r.status_code == 400 and r.text.startswith("no-route: ")
    # The instance was not trapped: the handler answered, and the server goes on.
    assert call(srv, "/jobs/work").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/defer?to=/app/sink&method=BAD%20METHOD",
        "/jobs/defer?to=app/sink",
        "/jobs/defer?to=/app/sink&h-wsrun-job-id=7",
        "/jobs/defer?to=/app/sink&max_attempts=0",
        "/jobs/every?name=zero&period=0&to=/app/sink",
        "/jobs/every?name=&period=100&to=/app/sink",
        "/jobs/cancel?name=",
    ],
)
def test_bad_arguments_are_an_invalid_error(srv: Server, path: str) -> None:
    r = call(srv, path)
    assert r.status_code == 400
    assert r.text.startswith("invalid: "), r.text


def test_tenant_reaches_its_own_routes_only(srv: Server) -> None:
    mark = marker("tenant")
    r = call(srv, "/jobs/defer?to=/alpha-work/x", mark, host="a.test")
    assert r.status_code == 200, r.text
    expected = f"tenant `alpha` handler `jobs` on /alpha-work stdout: jobs: work job={r.text} "
    assert wait_for(lambda: any(expected in line for line in worked(srv, mark))), srv.log()
    # Another host of the same tenant queues to the same tenant.
    r = call(srv, "/jobs/defer?to=/alpha-work", mark, host="www.a.test")
    assert r.status_code == 200, r.text
    # Another tenant's routes, and the routes without hosts, are not there for alpha.
    for to in ("/beta-work", "/app/sink"):
        r = call(srv, f"/jobs/defer?to={to}", "never", host="a.test")
        assert (r.status_code, r.text) == (
            400,
            f'no-route: no route serves "{to}" for host "a.test"\n',
        )
        r = call(srv, f"/jobs/every?name=x&period=100&to={to}", "never", host="a.test")
        assert r.status_code == 400 and r.text.startswith("no-route: ")
    # A handler without a host cannot reach a tenant either.
    r = call(srv, "/jobs/defer?to=/beta-work", "never")
    assert (r.status_code, r.text) == (400, 'no-route: no route serves "/beta-work"\n')
    # Nor can the guest pick the host through a header.
    r = call(srv, "/jobs/defer?to=/beta-work&h-host=b.test", "never", host="a.test")
    assert r.status_code == 400 and r.text.startswith("invalid: ")


def test_tenant_timers_have_their_own_names(srv: Server) -> None:
    mark = marker("tenant-timer")
    r = call(srv, "/jobs/every?name=shared&period=200&to=/alpha-work", mark, host="a.test")
    assert r.status_code == 200, r.text
    assert wait_for(lambda: worked(srv, mark)), srv.log()[-2000:]
    # Neither another tenant nor a handler outside any tenant sees alpha's `shared` timer.
    assert call(srv, "/beta-work/cancel?name=shared", host="b.test").text == "false"
    assert call(srv, "/jobs/cancel?name=shared").text == "false"
    fired = len(worked(srv, mark))
    assert wait_for(lambda: len(worked(srv, mark)) > fired), "alpha's timer must keep firing"
    assert call(srv, "/jobs/cancel?name=shared", host="www.a.test").text == "true"


def test_handler_without_services_imports_still_runs(srv: Server) -> None:
    assert b"wsrun:services" not in wasm_handler("hello").read_bytes()
    r = requests.get(srv.url + "/hello", timeout=WAIT)
    assert (r.status_code, r.text) == (200, hello_body(0))


# ------------------------------------------------------------------ examples/jobs

EXAMPLE = REPO / "examples" / "jobs"
CRATE = EXAMPLE / "signup"
WASM = CRATE / "target" / "wasm32-wasip2" / "release" / "signup.wasm"


@pytest.fixture(scope="module")
def example_component() -> Path:
    """The demo's `signup.wasm`, built here when `tests/run` has not done it."""
    if not WASM.is_file():
        cmd = ["cargo", "build", "--release", "-q", "--manifest-path", str(CRATE / "Cargo.toml")]
        cmd += ["--target", "wasm32-wasip2", "--target-dir", str(CRATE / "target")]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=280)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr}"
    assert WASM.is_file(), f"{WASM} was not built"
    return WASM


@pytest.mark.timeout(300)
def test_example_config_passes_check(example_component: Path) -> None:
    cmd = [wsrun_bin(), "check", "-c", str(EXAMPLE / "wsrun.toml")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout


@pytest.mark.timeout(300)
def test_example_runs_both_ways(
    launcher: Launcher, tmp_path: Path, example_component: Path
) -> None:
    config = EXAMPLE / "wsrun.toml"
    demo = launcher.start(
        ["-c", str(config), *state_args(tmp_path)], cwd=tmp_path, env={"DIGEST_EVERY": "0.5"}
    )
    r = requests.post(demo.url + "/api/signup", data=b"Ada", timeout=WAIT)
    assert r.status_code == 202, r.text
    job_id = r.text.split()[-1]

    def events() -> str:
        return requests.get(demo.url + "/py/", timeout=WAIT).text

    # WASM -> Python: the welcome mail job.
    assert wait_for(lambda: f"welcome mail sent to Ada (job {job_id}, attempt 1)" in events())
    # Python's durable timer -> WASM digest -> a job back to Python.
    assert wait_for(lambda: "digest built by wasm for job" in events()), events()
