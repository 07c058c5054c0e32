"""Tiny Flask hello for the idle-RSS measurement in bench/core.sh: `flask_app:app`."""

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello() -> str:
    """Return the same text as hello.py, through Flask's routing and response machinery."""
    return "Hello, world!"
