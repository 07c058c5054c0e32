"""Flask JSON endpoint for bench/apps.sh: `flask_json:app`, `GET /users/7?q=a`.

The four-line app issue 12 measured: a route with a converter, a query parameter and
`jsonify`, so the framework's request, routing and response machinery all run.
"""

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

app = Flask(__name__)


@app.route("/users/<int:user_id>")
def user(user_id: int) -> ResponseReturnValue:
    """The user as JSON, echoing the `q` query parameter."""
    return jsonify(id=user_id, name=f"user{user_id}", q=request.args.get("q", ""))
