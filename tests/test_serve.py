"""`lstm-text serve`: a real server process on a free loopback port, spoken to with httpx and the openai client."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")

import lstm_text  # noqa: E402
from lstm_text.cli import main  # noqa: E402

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXTS = ["a gorgeous, witty, seductive movie .", "the plot is nothing but boilerplate clichés .", "", "it is fine"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m lstm_text serve ...` on a free port; its log goes to a file (read when something fails)."""

    def __init__(self, tmp_path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"server-{self.port}.log"
        cmd = [sys.executable, "-m", "lstm_text", "serve", *args, "--port", str(self.port), "--log-level", "warning"]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, f"the server exited: {self.log.read_text()}"
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the server did not start: {self.log.read_text()}"
            time.sleep(0.1)

    def wait_idle(self, seconds: float = 10.0) -> None:
        """Until no generation runs or waits (failing after ``seconds``)."""
        deadline = time.monotonic() + seconds
        while self.metric("lstm_text_queue_depth", kind="generate") or self.metric("lstm_text_active_generations"):
            assert time.monotonic() < deadline, "generations still running or queued"
            time.sleep(0.05)

    def metric(self, name: str, headers: dict | None = None, **labels: str) -> float:
        text = httpx.get(self.url + "/metrics", headers=headers).text
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        line = f"{name}{{{want}}} " if labels else f"{name} "
        values = [float(x[len(line) :]) for x in text.splitlines() if x.startswith(line)]
        return values[0] if values else 0.0

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_run):
    """The built-in sentiment classifier and the tiny LM (named ``lm`` with NAME=PATH), with an API key from the
    environment and small limits; a 20 ms batch wait so concurrent classify requests surely share batches."""
    tmp = tmp_path_factory.mktemp("serve")
    limits = ["--max-texts", "64", "--max-chars", "2000", "--max-body", "65536", "--max-tokens", "100000"]
    s = Server(tmp, "sentiment", f"lm={tiny_run}", *limits, "--batch-wait-ms", "20", env={"LSTM_TEXT_API_KEY": KEY})
    yield s
    assert s.stop() == 0, s.log.read_text()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def sentiment():
    return lstm_text.load("sentiment")


@pytest.fixture(scope="module")
def lm(tiny_run):
    """The served LM as the server steps it: int8 weights (serve's --quantize auto)."""
    return lstm_text.load(tiny_run, quantize="int8")


def sse_events(lines) -> list[tuple[str | None, str]]:
    """(event, data) of a server-sent event stream's lines."""
    events, event = [], None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            events.append((event, line[6:]))
            event = None
    return events


def assert_same_records(got: list[dict], texts: list[str], want: list[dict]) -> None:
    assert [r["text"] for r in got] == texts
    for g, w in zip(got, want):
        assert g["label"] == w["label"] and g["lang"] == w["lang"]
        assert g["probs"].keys() == w["probs"].keys()
        assert all(abs(g["probs"][k] - w["probs"][k]) < 1e-5 for k in w["probs"])


def test_health_models_and_api_key(server, client):
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok", "models": ["sentiment", "lm"]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        r = httpx.post(server.url + "/v1/classify", json={"texts": ["x"]}, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(server.url + "/metrics").status_code == 401
    schema = httpx.get(server.url + "/openapi.json").json()  # the docs need no key; the routes do
    assert {"/v1/classify", "/v1/generate", "/v1/completions"} <= set(schema["paths"])
    cards = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert cards["sentiment"]["capabilities"] == {"generate": False, "classify": True}
    assert cards["sentiment"]["labels"] == ["negative", "positive"]
    assert cards["lm"]["capabilities"] == {"generate": True, "classify": False}
    assert "path" not in cards["lm"] and "training" not in cards["lm"]  # nothing about the server's files


def test_classify_returns_the_classify_jsonl_records(client, sentiment):
    r = client.post("/v1/classify", json={"texts": TEXTS})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "sentiment"
    assert_same_records(body["results"], TEXTS, sentiment.classify(TEXTS))
    assert body["results"][2] == {"text": "", "label": None, "score": None, "probs": {}, "lang": "zxx"}
    r = client.post("/v1/classify", json={"texts": ["it is fine"], "model": "sentiment", "threshold": 0.99999})
    rec = r.json()["results"][0]
    assert rec["label"] == "neutral" and rec["abstained_from"]["threshold"] == 0.99999


def test_concurrent_classify_requests_are_batched_and_answered_in_order(server, client, sentiment):
    words = "good bad awful great dull witty boring moving ugly fun".split()
    requests = [[f"{words[(i + j) % 10]} film number {i} line {j}" for j in range(1 + i % 7)] for i in range(32)]
    batches = server.metric("lstm_text_classify_batch_texts_count", AUTH, model="sentiment")
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda texts: client.post("/v1/classify", json={"texts": texts}), requests))
    batches = server.metric("lstm_text_classify_batch_texts_count", AUTH, model="sentiment") - batches
    for texts, r in zip(requests, answers):
        assert r.status_code == 200
        assert_same_records(r.json()["results"], texts, sentiment.classify(texts))
    assert 1 <= batches < len(requests)  # requests shared batches


def test_generate_same_seed_same_text_as_the_library_streamed_or_not(client, lm):
    want = lm.generate("the king", max_tokens=60, seed=5, temperature=0.8)
    body = {"prompt": "the king", "model": "lm", "max_tokens": 60, "seed": 5, "temperature": 0.8}
    r = client.post("/v1/generate", json=body)
    assert r.status_code == 200
    d = r.json()
    assert d["text"] == want and d["finish_reason"] == "length"
    assert d["usage"] == {"prompt_tokens": 8, "completion_tokens": 60, "total_tokens": 68}
    with client.stream("POST", "/v1/generate", json={**body, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.iter_lines())
    assert all(e == "text" for e, _ in events[:-1]) and events[-1][0] == "done"
    assert "".join(json.loads(d)["text"] for _, d in events[:-1]) == want
    assert json.loads(events[-1][1])["usage"]["completion_tokens"] == 60
    stop = want[10:12]  # a stop string the seeded text holds
    r = client.post("/v1/generate", json={**body, "stop": [stop]}).json()
    assert r["finish_reason"] == "stop" and r["text"] == want[: want.index(stop)]


def test_openai_client_completions_streaming_and_errors(server, lm):
    c = openai.OpenAI(api_key=KEY, base_url=server.url + "/v1", max_retries=0)
    want = lm.generate("the", max_tokens=30, seed=7)
    r = c.completions.create(model="lm", prompt="the", max_tokens=30, seed=7)
    assert r.object == "text_completion" and r.model == "lm"
    assert r.choices[0].text == want and r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 30 and r.usage.prompt_tokens == 3
    r = c.completions.create(model="lm", prompt=["the", "a"], max_tokens=10, n=2, seed=1, echo=True)
    assert [ch.index for ch in r.choices] == [0, 1, 2, 3]
    assert [ch.text[: len(p)] for ch, p in zip(r.choices, ["the", "the", "a", "a"])] == ["the", "the", "a", "a"]
    assert r.usage.completion_tokens == 40
    greedy = c.completions.create(model="lm", prompt="the", max_tokens=20, temperature=0).choices[0].text
    assert greedy == lm.generate("the", max_tokens=20, greedy=True)
    stream = c.completions.create(
        model="lm", prompt="the", max_tokens=30, seed=7, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == want
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 30
    with pytest.raises(openai.NotFoundError, match="not served here"):
        c.completions.create(model="/etc/passwd", prompt="x")
    with pytest.raises(openai.UnprocessableEntityError, match="max-tokens"):
        c.completions.create(model="lm", prompt="x", max_tokens=100_001)
    with pytest.raises(openai.UnprocessableEntityError, match="logprobs"):
        c.completions.create(model="lm", prompt="x", logprobs=2)
    assert c.models.retrieve("lm").id == "lm" and [m.id for m in c.models.list()] == ["sentiment", "lm"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="wrong", base_url=server.url + "/v1", max_retries=0).models.list()


BAD = [  # path, JSON body (or raw bytes), status, what the message says, param
    ("/v1/classify", {"texts": ["x"] * 65}, 422, "limit of 64 (lstm-text serve --max-texts)", "texts"),
    ("/v1/classify", {"texts": ["ok", "x" * 2001]}, 422, "2,001 characters, over this server's limit", "texts.1"),
    ("/v1/classify", {"texts": ["x" * 70_000]}, 413, "limit of 65,536 bytes (lstm-text serve --max-body)", None),
    ("/v1/classify", {"texts": "one string"}, 422, "valid list", "texts"),
    ("/v1/classify", {"texts": ["x"], "modle": "sentiment"}, 422, "Extra inputs", "modle"),
    ("/v1/classify", {"texts": ["x"], "model": "lm"}, 422, "no classification head", "model"),
    ("/v1/classify", {"texts": ["x"], "model": "../../etc/passwd"}, 404, "not served here", "model"),
    ("/v1/classify", {"texts": ["x"], "threshold": 1.5}, 422, "less than 1", "threshold"),
    ("/v1/classify", b'{"texts": [', 400, "not valid JSON", None),
    (
        "/v1/classify",
        {"texts": ["x"], "abstain_label": "x" * 101},
        422,
        "limit of 100 (lstm-text serve --max-label)",
        "abstain_label",
    ),
    ("/v1/classify", b'{"texts": ["ok", "a\\ud800"]}', 422, "lone surrogate (\\ud800 at character 1)", "texts.1"),
    ("/v1/classify", b'{"texts": ["ok"], "abstain_label": "\\udc00"}', 422, "lone surrogate", "abstain_label"),
    ("/v1/generate", b'{"prompt": "x\\ud800"}', 422, "lone surrogate", "prompt"),
    (
        "/v1/completions",
        b'{"model": "lm", "prompt": "\\ud800", "echo": true, "stream": true}',
        422,
        "surrogate",
        "prompt",
    ),
    ("/v1/completions", b'{"model": "lm", "prompt": ["a", "\\ud800"]}', 422, "lone surrogate", "prompt.1"),
    ("/v1/classify", b"", 422, "must be a JSON object", None),
    (
        "/v1/generate",
        {"prompt": "x", "max_tokens": 100_001},
        422,
        "limit of 100,000 (lstm-text serve --max-tokens)",
        "max_tokens",
    ),
    ("/v1/generate", {"prompt": "x" * 2001}, 422, "limit of 2,000 (lstm-text serve --max-chars)", "prompt"),
    ("/v1/generate", {"prompt": "x", "temperature": 0}, 422, "temperature must be in [0.001, 1000]", "temperature"),
    ("/v1/generate", {"prompt": "x", "top_p": 2}, 422, "top_p must be in [1e-06, 1]", "top_p"),
    ("/v1/generate", {"prompt": "x", "stop": [""]}, 422, "stop strings must not be empty", "stop"),
    ("/v1/generate", {"prompt": "x", "temperature": 1e39}, 422, "temperature must be in", "temperature"),
    ("/v1/generate", b'{"prompt": "x", "temperature": Infinity}', 422, "must be a finite number", "temperature"),
    ("/v1/generate", {"prompt": "x", "top_p": 1e-46}, 422, "top_p must be in", "top_p"),
    ("/v1/generate", {"prompt": "x", "repetition_penalty": 1e-39}, 422, "must be in", "repetition_penalty"),
    ("/v1/completions", {"model": "lm", "prompt": "x", "temperature": 1e39}, 422, "temperature must be", "temperature"),
    ("/v1/generate", {"prompt": "x", "model": "sentiment"}, 422, "no language-model head", "model"),
    ("/v1/completions", {"model": "lm", "prompt": "x", "n": 9}, 422, "limit of 8 (lstm-text serve --max-n)", "n"),
    ("/v1/completions", {"model": "lm", "prompt": [1, 2]}, 422, "token ids are not read", "prompt"),
    ("/v1/completions", {"model": "lm", "prompt": "x", "temperature": -1}, 422, ">= 0", "temperature"),
    ("/v1/completions", {"model": "lm", "prompt": "x", "suffix": "y"}, 422, "not supported", "suffix"),
    (
        "/v1/generate",
        {"prompt": "x", "stop": ["y" * 600, "z" * 401]},
        422,
        "1,001 characters, over this server's limit of 1,000 (lstm-text serve --max-stop-chars)",
        "stop",
    ),
    ("/v1/completions", {"model": "lm", "prompt": "x", "stop": "y" * 1001}, 422, "--max-stop-chars", "stop"),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "x"}], "stop": ["y"] * 1001},
        422,
        "1,001",
        "stop",
    ),
    ("/v1/chat/completions", {"messages": []}, 422, "at least one message", "messages"),
    ("/v1/classify", {"texts": ["a " * 500], "explain": True}, 422, "--max-chars x --max-texts", "explain"),
    ("/v1/nothing", {}, 404, "Not Found", None),
]


@pytest.mark.parametrize("path, body, status, says, param", BAD)
def test_bad_requests_get_a_json_error_naming_the_problem(client, path, body, status, says, param):
    if isinstance(body, bytes):
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        r = client.post(path, json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert says in err["message"] and err["param"] == param
    assert err["type"] == ("not_found_error" if status == 404 else "invalid_request_error")


def test_body_limit_holds_without_content_length_and_methods_are_checked(client):
    def chunks():  # chunked transfer encoding: no Content-Length to check first
        yield b'{"texts": ["'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"]}'

    r = client.post("/v1/classify", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "--max-body" in r.json()["error"]["message"]
    r = client.get("/v1/classify")
    assert r.status_code == 405 and r.json()["error"]["message"] == "Method Not Allowed"


def test_client_disconnect_stops_generation(server, client):
    def wait_stopped(cancelled: float) -> None:
        deadline = time.monotonic() + 10
        while server.metric("lstm_text_generations_cancelled_total", AUTH, model="lm") <= cancelled:
            assert time.monotonic() < deadline, "the generation went on after its client left"
            time.sleep(0.05)
        assert server.metric("lstm_text_active_generations", AUTH) == 0

    body = {"prompt": "the", "model": "lm", "max_tokens": 100_000, "stream": True}
    tokens = server.metric("lstm_text_generated_tokens_total", AUTH, model="lm")
    cancelled = server.metric("lstm_text_generations_cancelled_total", AUTH, model="lm")
    with client.stream("POST", "/v1/generate", json=body) as r:  # leaving the block closes the connection
        for i, _ in enumerate(r.iter_lines()):
            if i == 20:
                break
    wait_stopped(cancelled)
    with pytest.raises(httpx.ReadTimeout):  # not streamed: the server notices the closed connection too
        client.post("/v1/generate", json={**body, "stream": False}, timeout=0.5)
    wait_stopped(cancelled + 1)
    made = server.metric("lstm_text_generated_tokens_total", AUTH, model="lm") - tokens
    assert made < 100_000  # both stopped long before max_tokens


def test_metrics_are_prometheus_text(server, client):
    client.post("/v1/classify", json={"texts": ["fine"]})
    text = client.get("/metrics").text
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)+\})? -?[0-9.e+]+$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    assert server.metric("lstm_text_requests_total", AUTH, endpoint="/v1/classify", status="200") >= 1
    assert server.metric("process_resident_memory_bytes", AUTH) > 10_000_000
    assert 'lstm_text_request_seconds_bucket{endpoint="/v1/classify",le="+Inf"}' in text


def test_full_queue_answers_503_with_retry_after(tmp_path, tiny_run):
    s = Server(tmp_path, str(tiny_run), "--workers", "1", "--max-queue", "1", "--max-tokens", "100000")
    body = {"prompt": "the", "max_tokens": 100_000, "stream": True}
    try:
        with httpx.Client(base_url=s.url, timeout=30) as c:
            with c.stream("POST", "/v1/generate", json=body) as running, c.stream("POST", "/v1/generate", json=body):
                lines = running.iter_lines()  # kept: dropping a half-read iterator closes the connection
                next(lines)  # one runs, one waits: the queue is full
                assert s.metric("lstm_text_queue_depth", kind="generate") == 1
                r = c.post("/v1/generate", json=body)
                assert r.status_code == 503 and r.headers["retry-after"] == "1"
                assert "--max-queue 1" in r.json()["error"]["message"] and r.json()["error"]["code"] == "queue_full"
            s.wait_idle()  # both left: the queue empties and the server answers again
            assert c.post("/v1/generate", json={"prompt": "the", "max_tokens": 5}).status_code == 200
    finally:
        assert s.stop() == 0


def test_sigterm_drains_requests_in_flight_and_exits_0(tmp_path, tiny_run):
    s = Server(tmp_path, str(tiny_run), "--max-tokens", "100000")
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.post, s.url + "/v1/generate", json={"prompt": "the", "max_tokens": 4000}, timeout=60)
        deadline = time.monotonic() + 10
        while not s.metric("lstm_text_active_generations"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        s.proc.send_signal(signal.SIGTERM)
        r = slow.result()
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4000  # finished, not cut
    assert s.proc.wait(timeout=30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(s.url + "/healthz")


def test_serve_errors_are_one_line(monkeypatch, capsys, tiny_run):
    assert main(["serve", "no/such/run"]) == 1
    assert capsys.readouterr().err.startswith("error: model not found: no/such/run")
    assert main(["serve", str(tiny_run), f"tiny={tiny_run}"]) == 1
    assert capsys.readouterr().err == "error: two models are named 'tiny': name one with NAME=PATH\n"
    assert main(["serve", "--max-texts", "0"]) == 1
    assert capsys.readouterr().err == "error: --max-texts must be at least 1\n"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", str(tiny_run), "--port", str(taken.getsockname()[1])]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot listen on 127.0.0.1:") and err.count("\n") == 1
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as without the serve extra
    assert main(["serve"]) == 1
    assert capsys.readouterr().err == "error: serve needs the serve extra: pip install 'lstm-text[serve]'\n"


def _reply(sock: socket.socket, timeout: float = 15.0) -> tuple[int, dict]:
    """(status, JSON body) of the answer the server writes before it closes ``sock``."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_slow_and_silent_clients_are_cut_and_open_connections_capped(tmp_path):
    """A client that sends nothing, half a head or half a body holds a connection until --request-timeout (408,
    JSON); past --limit-concurrency open connections, one more is answered 503 at once: the server keeps its
    file descriptors and answers /healthz."""
    s = Server(tmp_path, "sentiment", "--request-timeout", "2", "--limit-concurrency", "3")
    try:
        addr = ("127.0.0.1", s.port)
        silent = [socket.create_connection(addr) for _ in range(3)]
        extra = socket.create_connection(addr)
        status, body = _reply(extra)
        assert status == 503 and "--limit-concurrency" in body["error"]["message"], body
        status, body = _reply(silent[0])  # sent nothing at all
        assert status == 408 and "--request-timeout" in body["error"]["message"], body
        for c in silent:
            c.close()
        head = socket.create_connection(addr)
        head.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-")  # half a head
        body_cut = socket.create_connection(addr)
        body_cut.sendall(b'POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"texts": [')
        assert _reply(head)[0] == 408
        assert _reply(body_cut)[0] == 408
        assert httpx.get(s.url + "/healthz", timeout=5).status_code == 200
        r = httpx.post(s.url + "/v1/classify", json={"texts": ["fine"]}, timeout=10)  # a whole request is served
        assert r.status_code == 200
    finally:
        assert s.stop() == 0, s.log.read_text()
    log = s.log.read_text()
    assert "Traceback" not in log and "--request-timeout" in log


def test_serve_help_names_every_limit(capsys):
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--limit-concurrency", "--request-timeout", "--max-label", "--max-chars", "--max-body"):
        assert flag in out, flag


CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Speak, {ROMEO}."}]


def test_openai_client_chat_completions_streamed_or_not(server, lm):
    """The conversation is written as the template's transcript and continued, the reply cut before the next
    turn's marker: the same text as ``generate`` of that transcript with those stop strings."""
    from lstm_text.serve.chat import ChatTemplate

    c = openai.OpenAI(api_key=KEY, base_url=server.url + "/v1", max_retries=0)
    t = ChatTemplate()
    transcript = t.render([("system", "Be brief."), ("user", "Speak, {ROMEO}.")])
    assert transcript == "Be brief.\n\nUser: Speak, {ROMEO}.\nAssistant:"
    want = lm.generate(transcript, max_tokens=40, seed=3, stop=t.stop).lstrip(" ")
    r = c.chat.completions.create(model="lm", messages=CHAT, max_tokens=40, seed=3)
    assert r.object == "chat.completion" and r.model == "lm" and r.id.startswith("chatcmpl-")
    msg = r.choices[0].message
    assert msg.role == "assistant" and msg.content == want
    assert r.choices[0].finish_reason in ("stop", "length") and r.usage.prompt_tokens == len(transcript)
    r = c.chat.completions.create(model="lm", messages=CHAT, max_completion_tokens=40, seed=3, n=2)
    assert r.choices[0].message.content == want and len(r.choices) == 2
    chunks = list(
        c.chat.completions.create(
            model="lm", messages=CHAT, max_tokens=40, seed=3, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == want
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == r.choices[0].finish_reason
    assert chunks[-1].usage.prompt_tokens == len(transcript)
    for field, value in [
        ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        ("functions", [{"name": "f", "parameters": {}}]),
        ("response_format", {"type": "json_object"}),
        ("logprobs", True),
    ]:
        with pytest.raises(openai.UnprocessableEntityError, match=field) as e:
            c.chat.completions.create(model="lm", messages=CHAT, **{field: value})
        assert e.value.body["param"] == field
    # the template's turn markers are the server's own stop strings: a request's own may use the whole limit
    r = c.chat.completions.create(model="lm", messages=CHAT, max_tokens=1, stop=["y" * 250] * 4)
    assert r.choices[0].finish_reason in ("stop", "length")
    with pytest.raises(openai.UnprocessableEntityError, match="'tool' messages are not supported"):
        c.chat.completions.create(model="lm", messages=[{"role": "tool", "content": "x", "tool_call_id": "1"}])


def test_chat_template_file_replaces_the_transcript_and_its_stops(tmp_path, tiny_run, lm):
    template = tmp_path / "chat.toml"
    template.write_text('user = "Q {content}\\n"\ngeneration = "A"\nstop = ["e"]\n', encoding="utf-8")
    s = Server(tmp_path, str(tiny_run), "--chat-template", str(template))
    try:
        r = httpx.post(
            s.url + "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "the king"}], "max_tokens": 300, "seed": 4},
        ).json()
        want = lm.generate("Q the king\nA", max_tokens=300, seed=4, stop=["e"])
        assert r["choices"][0]["message"]["content"] == want.lstrip(" ") and r["choices"][0]["finish_reason"] == "stop"
    finally:
        assert s.stop() == 0
    bad = tmp_path / "bad.toml"
    for text, says in [('user = "no placeholder"', "{content}"), ("colour = 1", "unknown keys: colour")]:
        bad.write_text(text, encoding="utf-8")
        r = subprocess.run(
            [sys.executable, "-m", "lstm_text", "serve", str(tiny_run), "--chat-template", str(bad)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode != 0 and says in r.stderr and "Traceback" not in r.stderr


def test_docs_and_the_page_load_nothing_from_the_network(server):
    external = re.compile(r"""(src|href)\s*=\s*["']?(https?:)?//""", re.I)
    docs = httpx.get(server.url + "/docs")  # open without the key, like /openapi.json
    assert docs.status_code == 200 and "swagger" in docs.text.lower() and not external.search(docs.text)
    assets = re.findall(r"""(?:src|href)=["']?(/[^"' >]+)""", docs.text)
    assert len(assets) >= 2
    for path in assets:
        r = httpx.get(server.url + path)
        assert r.status_code == 200 and len(r.content) > 100, path
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not external.search(page.text) and "http://" not in page.text and "https://" not in page.text
    assert httpx.get(server.url + "/redoc", headers=AUTH).status_code == 404  # ReDoc would come from a CDN


def test_classify_explain_gives_each_words_weight(client, sentiment):
    texts = ["a gorgeous , witty movie .", "boring"]
    r = client.post("/v1/classify", json={"texts": texts, "explain": True}).json()["results"]
    for got, text in zip(r, texts):
        want = sentiment.explain(text)
        assert [w for w, _ in got["explain"]] == [w for w, _ in want]
        assert all(abs(a - b) < 1e-5 for (_, a), (_, b) in zip(got["explain"], want))
    assert "explain" not in client.post("/v1/classify", json={"texts": texts}).json()["results"][0]


def test_concurrent_streams_are_stepped_as_one_batch(server, client):
    """Four streams at once: the model steps them together (rows per step, from the batch-size histogram)."""
    count = server.metric("lstm_text_generation_batch_rows_count", AUTH, model="lm")
    total = server.metric("lstm_text_generation_batch_rows_sum", AUTH, model="lm")
    body = {"prompt": "the", "model": "lm", "max_tokens": 400, "stream": True}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/generate", json=body), range(4)))
    assert all(a.status_code == 200 for a in answers)
    steps = server.metric("lstm_text_generation_batch_rows_count", AUTH, model="lm") - count
    rows = server.metric("lstm_text_generation_batch_rows_sum", AUTH, model="lm") - total
    assert rows == 4 * 400 and steps < 4 * 400  # every token was a row of a step, and steps held several rows


def test_client_gone_before_its_generation_starts_logs_no_error(tmp_path, tiny_run):
    s = Server(tmp_path, str(tiny_run), "--workers", "1", "--max-tokens", "100000")
    body = {"prompt": "the", "max_tokens": 100_000, "stream": True}
    try:
        with httpx.Client(base_url=s.url, timeout=30) as c:
            with c.stream("POST", "/v1/generate", json=body) as running:
                lines = running.iter_lines()
                next(lines)  # it holds the one place: the next request waits
                with pytest.raises(httpx.ReadTimeout):  # and its client leaves before it starts
                    c.post("/v1/generate", json={**body, "stream": False}, timeout=0.6)
                time.sleep(0.5)  # the server notices (it looks every 0.2 s)
            s.wait_idle()
            assert c.post("/v1/generate", json={"prompt": "the", "max_tokens": 5}).status_code == 200
    finally:
        assert s.stop() == 0
    log = s.log.read_text()
    assert "Traceback" not in log and "IndexError" not in log and "Exception in ASGI" not in log, log


def test_serve_help_names_the_new_limits():
    from typer.testing import CliRunner

    from lstm_text.cli import app

    out = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "--max-stop-chars" in out and "--chat-template" in out


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages ended
    by NUL on fds 3 and 4), so a test can type, click and read a page; page errors and console errors are kept."""

    def __init__(self, tmp_path):
        import select  # noqa: F401  (used by ``_read``)

        to_chrome, self._in = os.pipe()
        self._out, from_chrome = os.pipe()

        def fds():  # the child's fd 3 reads our commands, fd 4 writes its answers
            a, b = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(a, 3)
            os.dup2(b, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        flags += ["--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
        self.proc = subprocess.Popen(
            ["/usr/bin/chromium", *flags, "--remote-debugging-pipe", "about:blank"],
            close_fds=False,  # Popen would close fds 3 and 4 after ``fds`` made them
            preexec_fn=fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buf, self._id, self.errors, self.session = b"", 0, [], None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")

    def _read(self, timeout: float) -> dict:
        import select

        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._out], [], [], timeout)
            assert ready, "Chromium does not answer"
            chunk = os.read(self._out, 1 << 16)
            assert chunk, "Chromium exited"
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method: str, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self._in, json.dumps(msg).encode() + b"\0")
        while True:
            answer = self._read(60)
            if answer.get("id") == self._id:
                assert "error" not in answer, answer
                return answer.get("result", {})
            kind = answer.get("method")
            if kind == "Runtime.exceptionThrown":
                self.errors.append(answer["params"]["exceptionDetails"])
            elif kind == "Runtime.consoleAPICalled" and answer["params"]["type"] in ("error", "warning", "assert"):
                self.errors.append(answer["params"])
            elif kind == "Log.entryAdded" and answer["params"]["entry"]["level"] in ("error", "warning"):
                self.errors.append(answer["params"]["entry"])

    def js(self, expression: str):
        r = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def wait(self, expression: str, seconds: float = 30):
        deadline = time.monotonic() + seconds
        while not (value := self.js(expression)):
            assert time.monotonic() < deadline, f"never true: {expression}"
            time.sleep(0.1)
        return value

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self._in)
        os.close(self._out)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="needs Debian's chromium (/usr/bin/chromium)")
def test_the_page_generates_and_classifies_in_chromium(server, tmp_path):
    """Type a prompt, click Generate: text streams in; paste lines, click Classify: labels with shaded words."""
    browser = Chromium(tmp_path)
    try:
        browser.send("Page.navigate", url=server.url + "/")
        browser.wait("document.readyState === 'complete'")
        # this server wants a key: the page's first look at the models is refused, and says so
        assert "API key" in browser.wait("document.getElementById('status').textContent")
        assert all(e.get("source") == "network" and "401" in e.get("text", "") for e in browser.errors)
        browser.errors.clear()
        browser.js(f"document.getElementById('key').value = {json.dumps(KEY)}")
        browser.js("document.getElementById('reload').click()")
        assert browser.wait("document.getElementById('lm').options.length && document.getElementById('lm').value")
        assert browser.js("document.getElementById('clf').value") == "sentiment"
        browser.js("document.getElementById('prompt').value = 'the king'")
        browser.js("document.getElementById('max').value = '300'")
        browser.js("document.getElementById('go').click()")
        browser.wait("document.getElementById('out').textContent.length > 0")  # the first pieces are in
        text = browser.wait("!document.getElementById('go').disabled && document.getElementById('out').textContent")
        assert len(text) > 50 and browser.js("document.getElementById('out').className") != "err"
        browser.js("document.getElementById('lines').value = 'a gorgeous , witty movie .\\nboring and dull'")
        browser.js("document.getElementById('classify').click()")
        rows = browser.wait(
            "document.querySelectorAll('#labels > div').length === 2 && "
            "[...document.querySelectorAll('#labels > div')].map(d => d.textContent)"
        )
        assert rows[0].startswith("positive") and rows[1].startswith("negative")
        words = browser.js("[...document.querySelectorAll('#labels .w')].map(w => [w.textContent, w.title])")
        assert [w for w, _ in words] == "a gorgeous , witty movie . boring and dull".split()
        assert all(float(t) == float(t) for _, t in words)  # each word carries its weight
        assert not browser.errors, browser.errors
    finally:
        browser.close()


def test_a_generation_that_fails_ends_each_stream_with_an_error_event(monkeypatch, tiny_run, caplog):
    """A step that raises ends the job: the streamed answers carry one error event (and no [DONE]), the
    failure is logged once per request, and the server goes on answering."""
    from fastapi.testclient import TestClient

    from lstm_text.infer.batch import BatchGenerator
    from lstm_text.serve.app import create_app

    def broken(self):
        raise RuntimeError("the step broke")

    monkeypatch.setattr(BatchGenerator, "step", broken)
    app = create_app({"lm": lstm_text.load(tiny_run)})
    with TestClient(app) as c:
        r = c.post("/v1/generate", json={"model": "lm", "prompt": "a", "max_tokens": 5, "stream": True})
        events = sse_events(r.text.splitlines())
        assert [e for e, _ in events] == ["error"], events
        assert "the step broke" in json.loads(events[0][1])["error"]["message"]
        r = c.post("/v1/completions", json={"model": "lm", "prompt": "a", "max_tokens": 5, "stream": True})
        events = sse_events(r.text.splitlines())
        assert len(events) == 1 and json.loads(events[0][1])["error"]["type"] == "server_error", events
        assert c.get("/healthz").status_code == 200
    assert sum("generation failed" in m for m in caplog.messages) == 2


def test_quantize_auto_steps_language_models_in_int8_and_leaves_classifiers_as_trained(tiny_run):
    """serve's default: a language model's generation steps in int8 (5x the tokens/s at 16 streams on 2 cores),
    a classifier's answers stay exactly what `lstm-text classify` gives."""
    from lstm_text.serve.server import load_models

    auto = load_models([f"lm={tiny_run}", "sentiment"])
    assert auto["lm"].quantize == "int8" and auto["sentiment"].quantize == ""
    fp32 = load_models([f"lm={tiny_run}", "sentiment"], "none")
    assert fp32["lm"].quantize == "" and fp32["sentiment"].quantize == ""
    assert load_models(["sentiment"], "int8")["sentiment"].quantize == "int8"
