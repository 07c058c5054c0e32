"""A small Flask app for the demo: `wsrun flask_app:app --pythonpath examples`."""

from collections.abc import Iterator

from flask import Flask, Response, redirect, request, stream_with_context

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return (
        "<h1>Flask on wsrun</h1>"
        "<p>Try <a href='/greet?name=you'>/greet</a>, <a href='/stream'>/stream</a>, "
        "<a href='/hello/'>/hello/</a> (a plain WSGI app on its own prefix) and "
        "<a href='/static/hello.txt'>/static/hello.txt</a>.</p>"
        "<form method='post' action='/upload' enctype='multipart/form-data'>"
        "<input type='file' name='file'><button>Upload</button></form>"
    )


@app.get("/greet")
def greet() -> str:
    return f"Hello, {request.args.get('name', 'world')}!\n"


@app.post("/upload")
def upload() -> dict[str, object]:
    uploaded = request.files.get("file")
    data = uploaded.read() if uploaded else b""
    return {"name": uploaded.filename if uploaded else None, "bytes": len(data)}


@app.get("/stream")
def stream() -> Response:
    def numbers() -> Iterator[str]:
        for i in range(5):
            yield f"line {i}\n"

    return Response(stream_with_context(numbers()), mimetype="text/plain")


@app.get("/old")
def old() -> Response:
    return redirect("/", code=301)
