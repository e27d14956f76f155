#!/usr/bin/python3
"""The fan-out benchmark's baseline: Flask + Flask-SocketIO on eventlet, one process.

Every Socket.IO client that connects joins the room "account" (one account, as in personad's
benchmark). POST /question?id=Q answers 202 at once and, like personad's question job, emits the
answer afterwards from a background task: one "answer.delta" then one "answer.done" event to the
room, both carrying question_id. bench/fanout --mode socketio is the client.

usage: flask_fanout.py --port N
"""
import argparse
import resource

import eventlet
import eventlet.wsgi

eventlet.monkey_patch()

from flask import Flask, jsonify, request  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(app, async_mode="eventlet")
ANSWER = ("About the sea, you said: the water was grey and cold that morning, and we walked "
          "along the shore until the rain came.")


@socketio.on("connect")
def on_connect(auth=None):
    join_room("account")


def answer(qid):
    socketio.emit("answer.delta", {"question_id": qid, "offset": 0, "text": ANSWER},
                  to="account")
    socketio.emit("answer.done", {"question_id": qid, "text": ANSWER, "passages": 1},
                  to="account")


@app.post("/question")
def question():
    qid = int(request.args["id"])
    socketio.start_background_task(answer, qid)
    return jsonify(id=qid, status="queued"), 202


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # socketio.run(app) would listen with eventlet's default backlog of 50 and serve at most 1,024
    # connections at once (eventlet.wsgi's max_size): this is what it does, with both raised.
    sock = eventlet.listen(("127.0.0.1", args.port), backlog=4096)
    eventlet.wsgi.server(sock, app, log_output=False, max_size=65536)


if __name__ == "__main__":
    main()
