"""A real Flask app (from PyPI), run unchanged by wsrun: `flask_app:app`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from flask import (
    Flask,
    Response,
    jsonify,
    make_response,
    redirect,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "flask ok"


@app.post("/form")
def form() -> Response:
    return jsonify({k: request.form.getlist(k) for k in request.form})


@app.post("/upload")
def upload() -> Response:
    f = request.files["file"]
    data = f.read()
    return jsonify(
        {
            "filename": f.filename,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "note": request.form.get("note"),
        }
    )


@app.post("/json")
def json_echo() -> Response:
    return jsonify({"got": request.get_json()})


@app.get("/cookie/set")
def cookie_set() -> Response:
    resp = make_response("cookie set")
    for k, v in request.args.items():
        resp.set_cookie(k, v, httponly=True)
    return resp


@app.get("/cookie/get")
def cookie_get() -> Response:
    return jsonify(dict(request.cookies))


@app.get("/redirect")
def go() -> ResponseReturnValue:
    return redirect(url_for("target", x="1"))


@app.get("/target")
def target() -> str:
    return f"target x={request.args.get('x')}"


@app.get("/stream")
def stream() -> Response:
    n = int(request.args.get("n", "5"))

    def gen() -> Iterator[str]:
        # request is only reachable here thanks to stream_with_context
        who = request.args.get("who", "nobody")
        for i in range(n):
            yield f"line {i} for {who}\n"

    return Response(stream_with_context(gen()), mimetype="text/plain")


@app.get("/boom")
def boom() -> str:
    raise RuntimeError("flask-boom")
