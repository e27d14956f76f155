#!/usr/bin/python3
"""The question-throughput benchmark's client (bench/questions.sh; docs/benchmarks.md, "Questions").

  questions.py --url http://127.0.0.1:PORT --token T [--items 200] [--paragraphs 500]
               [--concurrency 4] [--duration 15] [--seed 1]

1. Corpus: ITEMS text items of PARAGRAPHS paragraphs each (200 x 500 = 100,000 passages: the
   store cuts text items into passages at blank lines), pseudo-English from a fixed seed, sent
   with POST /v1/media?title=T (Content-Type text/plain).
2. Questions: CONCURRENCY threads, each asks one question (POST /v1/questions, 3-6 words drawn
   from the corpus's vocabulary, fixed seed) and waits for its answer.done before asking the
   next, for DURATION seconds. One more thread follows the account's events with the long-poll
   GET /v1/events?after=N&wait=30 and notes when each answer.done arrives.
   Latency = answer.done arrival - POST sent. Throughput = answers / elapsed.
3. The server's own timings of the last 100 questions (GET /v1/questions).
Prints key=value lines.
"""
import argparse
import http.client
import json
import random
import threading
import time
import urllib.parse

SYL = ["ka", "lo", "mi", "ren", "to", "sa", "vel", "an", "or", "di", "bra", "el", "un", "ti",
       "mar", "ces", "po", "lin", "gra", "hu", "fe", "nor", "qui", "ze", "ath", "ly", "mon", "es"]
COMMON = ("the a of and to in it was we I my that for on with as at by from this had were "
          "not but they you all there when one would could about then so after before into "
          "over again very little old long summer winter morning night house garden river sea "
          "road city mother father friend school work letter music rain snow light window "
          "table bread walk remember think said went came found kept knew").split()


def vocabulary(rng, n=3000):
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYL) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def sentence(rng, vocab):
    n = rng.randint(6, 16)
    ws = [rng.choice(COMMON) if rng.random() < 0.55 else rng.choice(vocab) for _ in range(n)]
    ws[0] = ws[0].capitalize()
    return " ".join(ws) + rng.choice([".", ".", ".", "!", "?"])


def paragraph(rng, vocab):
    return " ".join(sentence(rng, vocab) for _ in range(rng.randint(1, 4)))


class Conn:
    def __init__(self, url, token):
        u = urllib.parse.urlparse(url)
        self.host, self.port, self.token = u.hostname, u.port, token
        self.c = None

    def req(self, method, path, body=None, ctype=None, timeout=60):
        for attempt in range(2):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            h = {"Authorization": "Bearer " + self.token}
            if ctype:
                h["Content-Type"] = ctype
            try:
                self.c.request(method, path, body=body, headers=h)
                r = self.c.getresponse()
                data = r.read()
                return r.status, data
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = None
                if attempt:
                    raise


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--paragraphs", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    vocab = vocabulary(rng)
    c = Conn(a.url, a.token)

    # ---- 1. corpus ----
    t0 = time.monotonic()
    nbytes = 0
    for i in range(a.items):
        text = "\n\n".join(paragraph(rng, vocab) for _ in range(a.paragraphs)) + "\n"
        body = text.encode()
        nbytes += len(body)
        st, data = c.req("POST", f"/v1/media?title=notes-{i:03d}", body, "text/plain")
        if st != 201:
            raise SystemExit(f"POST /v1/media -> {st} {data[:200]!r}")
    t_corpus = time.monotonic() - t0
    print(f"corpus items={a.items} passages={a.items * a.paragraphs} bytes={nbytes} "
          f"insert_s={t_corpus:.1f}", flush=True)

    st, data = c.req("GET", "/v1/events?after=9000000000000000&wait=0")
    after = json.loads(data)["last_seq"]

    # ---- 2. questions ----
    done_at = {}          # question id -> monotonic time of its answer.done
    cv = threading.Condition()
    stop = threading.Event()        # askers: ask no more
    stop_follow = threading.Event()  # the follower: once every asker has its last answer

    def follow():
        nonlocal after
        ev = Conn(a.url, a.token)
        while not stop_follow.is_set():
            st, data = ev.req("GET", f"/v1/events?after={after}&wait=1", timeout=30)
            t = time.monotonic()
            if st != 200:
                time.sleep(0.01)
                continue
            v = json.loads(data)
            got = [e["question_id"] for e in v["events"] if e["type"] in ("answer.done", "answer.failed")]
            after = v["last_seq"]
            if got:
                with cv:
                    for q in got:
                        done_at[q] = t
                    cv.notify_all()

    lat, failed, t_end = [], [], [float("inf")]
    qrng = random.Random(a.seed + 1)
    qlock = threading.Lock()

    def asker():
        cc = Conn(a.url, a.token)
        while not stop.is_set():
            with qlock:
                words = [qrng.choice(vocab if qrng.random() < 0.6 else COMMON)
                         for _ in range(qrng.randint(3, 6))]
            body = json.dumps({"text": "what did I say about " + " ".join(words) + "?"})
            ts = time.monotonic()
            st, data = cc.req("POST", "/v1/questions", body, "application/json")
            if st != 202:
                failed.append(st)
                continue
            qid = json.loads(data)["id"]
            with cv:
                ok = cv.wait_for(lambda: qid in done_at, timeout=30)
                if ok:
                    if done_at[qid] <= t_end[0]:
                        lat.append(done_at[qid] - ts)
                else:
                    failed.append(qid)

    ft = threading.Thread(target=follow, daemon=True)
    ft.start()
    ts = [threading.Thread(target=asker) for _ in range(a.concurrency)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    t_end[0] = t0 + a.duration
    time.sleep(a.duration)
    stop.set()
    for t in ts:
        t.join()
    stop_follow.set()
    elapsed = a.duration
    ms = [x * 1000 for x in lat]
    for qid in failed[:10]:
        if isinstance(qid, int):
            st, data = c.req("GET", f"/v1/questions/{qid}")
            q = json.loads(data)
            print(f"lost question={qid} status={q.get('status')} timings={q.get('timings')}",
                  flush=True)
    print(f"questions concurrency={a.concurrency} answered={len(lat)} failed={len(failed)} "
          f"elapsed_s={elapsed:.1f} qps={len(lat) / elapsed:.1f} "
          f"p50_ms={pct(ms, .5):.1f} p99_ms={pct(ms, .99):.1f} max_ms={max(ms):.1f}", flush=True)

    # ---- 3. the server's timings of the last 100 questions ----
    st, data = c.req("GET", "/v1/questions?limit=100")
    qs = json.loads(data)["questions"]
    tm = [q.get("timings") or {} for q in qs]
    npass = [len(q.get("passages") or []) for q in qs]
    r = [t.get("retrieve_ms", 0) for t in tm]
    tot = [t.get("total_ms", 0) for t in tm]
    print(f"server_timings n={len(qs)} retrieve_p50_ms={pct(r, .5):.2f} "
          f"retrieve_p99_ms={pct(r, .99):.2f} total_p50_ms={pct(tot, .5):.2f} "
          f"total_p99_ms={pct(tot, .99):.2f} passages_mean={sum(npass) / max(1, len(npass)):.1f}",
          flush=True)


if __name__ == "__main__":
    main()
