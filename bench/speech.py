#!/usr/bin/python3
"""Question to speech (bench/speech.sh; docs/benchmarks.md, "Question to speech"): a real
persona-desktop with --out-dir; for each of COUNT questions, the time from POST /v1/questions
returning until answer-<id>.wav exists, and until it holds more than its 44-byte header (the first
audio sample written). Polls the directory every 0.5 ms.

  speech.py --url URL --token SESSION_TOKEN --out-dir DIR [--count 20]
"""
import argparse
import json
import os
import statistics
import time
import urllib.request


def post(url, token, text):
    req = urllib.request.Request(url + "/v1/questions", data=json.dumps({"text": text}).encode(),
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--count", type=int, default=20)
    a = ap.parse_args()
    created, first = [], []
    topics = ["the sea", "the garden", "my grandmother", "the river", "music"]
    for i in range(-1, a.count):  # -1: warm-up, not counted
        qid = post(a.url, a.token, f"what did I say about {topics[i % 5]}?")
        t0 = time.monotonic()
        path = os.path.join(a.out_dir, f"answer-{qid}.wav")
        tc = td = None
        while time.monotonic() - t0 < 10:
            try:
                sz = os.stat(path).st_size
            except FileNotFoundError:
                sz = -1
            now = time.monotonic()
            if sz >= 0 and tc is None:
                tc = now - t0
            if sz > 44:
                td = now - t0
                break
            time.sleep(0.0005)
        if i >= 0:
            if tc is None or td is None:
                print(f"question {qid}: no WAV after 10 s", flush=True)
                continue
            created.append(tc * 1000)
            first.append(td * 1000)
        # let it finish writing (and the machine settle) before the next question
        last = -1
        while True:
            time.sleep(0.2)
            sz = os.stat(path).st_size if os.path.exists(path) else -1
            if sz == last:
                break
            last = sz
    q = lambda v, p: sorted(v)[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] if v else float("nan")
    print(f"speech count={len(first)} created_median_ms={statistics.median(created):.1f} "
          f"first_sample_median_ms={statistics.median(first):.1f} "
          f"first_sample_p90_ms={q(first, .9):.1f} first_sample_max_ms={max(first):.1f}",
          flush=True)


if __name__ == "__main__":
    main()
