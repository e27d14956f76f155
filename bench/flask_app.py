#!/usr/bin/python3
"""The comparison stack of the HTTP benchmark: Flask + Flask-SocketIO on eventlet, the Python
stack personad replaces. Two routes doing the same work as personad's:

  GET /v1/health      -> {"status":"ok","version":...,"uptime_s":N} (no auth, no database)
  GET /v1/media/<id>  -> Bearer token checked against SQLite (SHA-256 of the token, as personad
                         stores it), then the item row and its artifact rows read from SQLite and
                         returned as JSON, 404 across accounts.

usage: flask_app.py --port N --db FILE --seed ITEM.json --token TOKEN
The database is created and filled from ITEM.json (a personad GET /v1/media/{id} answer) and the
token on start, so both servers return the same document.
"""
import argparse
import hashlib
import json
import os
import sqlite3
import time

import eventlet

eventlet.monkey_patch()

from flask import Flask, abort, g, jsonify, request  # noqa: E402
from flask_socketio import SocketIO  # noqa: E402

SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS devices (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE, revoked_at INTEGER);
CREATE TABLE IF NOT EXISTS media (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,
  kind TEXT, title TEXT, sha256 TEXT, size INTEGER, content_type TEXT, status TEXT, error TEXT,
  created_at INTEGER, updated_at INTEGER, probe_json TEXT);
CREATE TABLE IF NOT EXISTS artifacts (media_id INTEGER NOT NULL, name TEXT NOT NULL,
  size INTEGER, mime TEXT, ext TEXT, sha256 TEXT, info_json TEXT, PRIMARY KEY (media_id, name));
"""

app = Flask(__name__)
socketio = SocketIO(app, async_mode="eventlet")
STARTED = time.time()
DB_PATH = None


def seed(db_path, item, token):
    if os.path.exists(db_path):
        os.unlink(db_path)
    db = sqlite3.connect(db_path)
    db.executescript(SCHEMA)
    db.execute("INSERT INTO devices (id, account_id, token_sha256) VALUES (1, 1, ?)",
               (hashlib.sha256(token.encode()).hexdigest(),))
    db.execute("INSERT INTO media VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
               (item["id"], 1, item["kind"], item.get("title"), item["sha256"], item["size"],
                item.get("content_type"), item["status"], item.get("error"), item["created_at"],
                item["updated_at"], json.dumps(item.get("probe"))))
    for a in item.get("artifacts", []):
        db.execute("INSERT INTO artifacts VALUES (?,?,?,?,?,?,?)",
                   (item["id"], a["name"], a["size"], a["mime"], a["ext"], a["sha256"],
                    json.dumps(a.get("info"))))
    db.commit()
    db.close()


def get_db():
    # One connection per greenlet (eventlet runs every request in a greenlet of one OS thread).
    db = getattr(g, "_db", None)
    if db is None:
        db = g._db = sqlite3.connect(DB_PATH)
        db.row_factory = sqlite3.Row
    return db


@app.teardown_appcontext
def close_db(_exc):
    db = getattr(g, "_db", None)
    if db is not None:
        db.close()


def error(status, code, message):
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    return resp


@app.get("/v1/health")
def health():
    return jsonify({"status": "ok", "version": "0.1.0", "uptime_s": int(time.time() - STARTED)})


@app.get("/v1/media/<int:media_id>")
def media_get(media_id):
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return error(401, "unauthorized", "A bearer token is required.")
    digest = hashlib.sha256(auth[7:].encode()).hexdigest()
    db = get_db()
    dev = db.execute("SELECT account_id FROM devices WHERE token_sha256 = ? AND revoked_at IS NULL",
                     (digest,)).fetchone()
    if dev is None:
        return error(401, "unauthorized", "The token is not valid.")
    m = db.execute("SELECT * FROM media WHERE id = ? AND account_id = ?",
                   (media_id, dev["account_id"])).fetchone()
    if m is None:
        return error(404, "not_found", "No such media item.")
    item = {k: m[k] for k in ("id", "kind", "title", "sha256", "size", "content_type", "status",
                              "error", "created_at", "updated_at")}
    item["probe"] = json.loads(m["probe_json"]) if m["probe_json"] else None
    arts = []
    for a in db.execute("SELECT * FROM artifacts WHERE media_id = ? ORDER BY rowid", (media_id,)):
        arts.append({"name": a["name"], "size": a["size"], "mime": a["mime"], "ext": a["ext"],
                     "sha256": a["sha256"], "url": "/v1/media/%d/%s" % (media_id, a["name"]),
                     "info": json.loads(a["info_json"]) if a["info_json"] else None})
    item["artifacts"] = arts
    return jsonify(item)


def main():
    global DB_PATH
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--seed", required=True)
    ap.add_argument("--token", required=True)
    args = ap.parse_args()
    with open(args.seed) as f:
        seed(args.db, json.load(f), args.token)
    DB_PATH = args.db
    app.config["JSON_SORT_KEYS"] = False
    print("flask listening on http://127.0.0.1:%d" % args.port, flush=True)
    socketio.run(app, host="127.0.0.1", port=args.port, log_output=False)


if __name__ == "__main__":
    main()
