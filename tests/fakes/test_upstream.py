"""Tests for the fake OpenAI-compatible upstream over real HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.upstream import FakeUpstream, parse_directives

UPSTREAM_SCRIPT = Path(__file__).with_name("upstream.py")


@pytest.fixture(scope="module")
def shared() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake(shared: FakeUpstream) -> FakeUpstream:
    shared.reset()
    return shared


@pytest.fixture
def http(fake: FakeUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=5.0) as client:
        yield client


@pytest.fixture
def sdk(fake: FakeUpstream) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=fake.url, api_key="sk-test", max_retries=0)
    with client:
        yield client


def chat(content: Any, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": content}],
    }
    body.update(extra)
    return body


def sse_events(client: httpx.Client, body: dict[str, Any]) -> list[str]:
    """Return every data payload of a streamed request, [DONE] included."""
    with client.stream("POST", "/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [
            line[len("data: ") :]
            for line in response.iter_lines()
            if line.startswith("data: ")
        ]


def chunks_of(events: list[str]) -> list[dict[str, Any]]:
    return [json.loads(event) for event in events if event != "[DONE]"]


def test_parse_directives_from_json_list_text() -> None:
    text = json.dumps([{"type": "text", "text": "usage=4,2\nwords=2 nousage"}])
    directives = parse_directives(text)
    assert directives.usage == (4, 2)
    assert directives.words == 2
    assert directives.nousage
    assert parse_directives("words=abc fail=2000").words == 3


def test_usage_numbers(http: httpx.Client) -> None:
    body = chat("hello usage=7,5 cached=3 reasoning=2")
    data = http.post("/chat/completions", json=body).json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-fake-")
    assert data["model"] == "gpt-test"
    assert data["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "w0 w1 w2"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert data["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 5,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    default = http.post("/chat/completions", json=chat("words=5")).json()
    assert default["choices"][0]["message"]["content"] == "w0 w1 w2 w3 w4"
    assert default["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
    }


def test_directives_come_from_last_user_message(http: httpx.Client) -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "usage=1,1"},
            {"role": "assistant", "content": "usage=2,2"},
            {"role": "user", "content": [{"type": "text", "text": "usage=4,6"}]},
        ],
    }
    usage = http.post("/chat/completions", json=body).json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (4, 6)


def test_openai_sdk_non_stream(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "usage=11,4 cached=5"}],
    )
    assert completion.choices[0].message.content == "w0 w1 w2"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 11
    assert completion.usage.completion_tokens == 4
    assert completion.usage.total_tokens == 15
    details = completion.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens == 5


def test_stream_sequence(http: httpx.Client) -> None:
    body = chat("usage=9,3", stream=True, stream_options={"include_usage": True})
    events = sse_events(http, body)
    assert events[-1] == "[DONE]"
    chunks = chunks_of(events)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    role, *content, finish, usage = chunks
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"]["content"] for c in content] == [
        "w0",
        " w1",
        " w2",
    ]
    assert finish["choices"][0]["delta"] == {}
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert usage["choices"] == []
    assert usage["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 3,
        "total_tokens": 12,
    }


def test_stream_without_include_usage_has_no_usage(http: httpx.Client) -> None:
    chunks = chunks_of(sse_events(http, chat("hi", stream=True)))
    assert all("usage" not in chunk for chunk in chunks)
    assert all(chunk["choices"] for chunk in chunks)


def test_openai_sdk_stream(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "words=4 usage=2,4"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    usage = None
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
        usage = chunk.usage or usage
    assert text == "w0 w1 w2 w3"
    assert usage is not None and usage.total_tokens == 6


def test_nousage(http: httpx.Client) -> None:
    data = http.post("/chat/completions", json=chat("nousage")).json()
    assert "usage" not in data
    body = chat("nousage", stream=True, stream_options={"include_usage": True})
    events = sse_events(http, body)
    assert events[-1] == "[DONE]"
    assert all(not chunk.get("usage") for chunk in chunks_of(events))
    assert all(chunk["choices"] for chunk in chunks_of(events))


def test_fail_directive(http: httpx.Client, sdk: openai.OpenAI) -> None:
    response = http.post("/chat/completions", json=chat("fail=500"))
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "fake failure 500",
            "type": "upstream_error",
            "param": None,
            "code": None,
        }
    }
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "fail=500"}]
        )


def test_hang_times_out_client(fake: FakeUpstream) -> None:
    with httpx.Client(base_url=fake.url, timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(httpx.TimeoutException):
            client.post("/chat/completions", json=chat("hang=2"))
        assert time.monotonic() - started < 1.5
    client_sdk = openai.OpenAI(
        base_url=fake.url, api_key="k", timeout=0.5, max_retries=0
    )
    with client_sdk, pytest.raises(openai.APITimeoutError):
        client_sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hang=2"}]
        )


def test_hang_does_not_block_other_requests(fake: FakeUpstream) -> None:
    outcome: list[int] = []

    def slow_call() -> None:
        with httpx.Client(base_url=fake.url, timeout=5.0) as client:
            response = client.post("/chat/completions", json=chat("hang=0.6"))
            outcome.append(response.status_code)

    worker = threading.Thread(target=slow_call)
    worker.start()
    time.sleep(0.1)
    with httpx.Client(base_url=fake.url, timeout=5.0) as client:
        started = time.monotonic()
        assert client.post("/chat/completions", json=chat("hi")).status_code == 200
        assert time.monotonic() - started < 0.4
    worker.join(5.0)
    assert outcome == [200]


def test_drop_breaks_stream(http: httpx.Client) -> None:
    seen: list[str] = []
    body = chat("drop=2", stream=True, stream_options={"include_usage": True})
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", "/chat/completions", json=body) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(line)
    contents = [
        json.loads(line[6:])["choices"][0]["delta"].get("content") for line in seen
    ]
    assert contents == ["", "w0", " w1"]
    assert not any("[DONE]" in line for line in seen)


def test_drop_non_stream_gives_no_response(http: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/chat/completions", json=chat("drop=0"))
    assert http.post("/chat/completions", json=chat("hi")).status_code == 200


def test_n2_interleaving(http: httpx.Client, sdk: openai.OpenAI) -> None:
    chunks = chunks_of(sse_events(http, chat("n=2", stream=True)))
    order = [
        (c["choices"][0]["index"], c["choices"][0]["delta"].get("content"))
        for c in chunks
    ]
    assert order == [
        (0, ""),
        (1, ""),
        (0, "w0"),
        (1, "w0"),
        (0, " w1"),
        (1, " w1"),
        (0, " w2"),
        (1, " w2"),
        (0, None),
        (1, None),
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks[-2:]] == ["stop"] * 2
    completion = sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "n=2 words=2"}]
    )
    assert [c.index for c in completion.choices] == [0, 1]
    assert [c.message.content for c in completion.choices] == ["w0 w1"] * 2
    assert completion.usage is not None and completion.usage.completion_tokens == 2


def test_colors(http: httpx.Client) -> None:
    chunks = chunks_of(sse_events(http, chat("colors", stream=True)))
    texts: dict[int, str] = {0: "", 1: ""}
    pieces = []
    for chunk in chunks:
        choice = chunk["choices"][0]
        content = choice["delta"].get("content")
        if content:
            pieces.append((choice["index"], content))
            texts[choice["index"]] += content
    assert pieces == [(0, "Red"), (1, "Blue"), (0, "."), (1, ".")]
    assert texts == {0: "Red.", 1: "Blue."}


def test_toolcall(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "toolcall"}],
        stream=True,
    )
    arguments = ""
    names: list[str] = []
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                assert call.index == 0
                if call.function and call.function.name:
                    names.append(call.function.name)
                if call.function and call.function.arguments:
                    arguments += call.function.arguments
            finish = choice.finish_reason or finish
    assert arguments == '{"city":"Oslo","unit":"c"}'
    assert names == ["get_weather"]
    assert finish == "tool_calls"
    completion = sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "toolcall"}]
    )
    answer = completion.choices[0]
    assert answer.finish_reason == "tool_calls"
    assert answer.message.tool_calls is not None
    complete = answer.message.tool_calls[0]
    assert complete.type == "function"
    assert complete.id == "call_1"
    assert complete.function.name == "get_weather"
    assert complete.function.arguments == '{"city":"Oslo","unit":"c"}'


def test_extended_stream_directives(http: httpx.Client) -> None:
    options = {"include_usage": True}
    nodone = sse_events(http, chat("nodone", stream=True, stream_options=options))
    assert "[DONE]" not in nodone
    assert json.loads(nodone[-1])["usage"]["total_tokens"] == 13
    running = chunks_of(
        sse_events(http, chat("runningusage", stream=True, stream_options=options))
    )
    completions = [chunk["usage"]["completion_tokens"] for chunk in running]
    assert completions == [0, 1, 2, 3, 3, 3]
    extra = chunks_of(sse_events(http, chat("extra", stream=True)))
    assert all(chunk["system_fingerprint"] == "fp_fake" for chunk in extra)
    assert all(chunk["provider_meta"] == {"x": 1} for chunk in extra)
    assert all(chunk["service_tier"] == "default" for chunk in extra)


def test_pings_after_usage(http: httpx.Client) -> None:
    body = chat("pings=1", stream=True, stream_options={"include_usage": True})
    with http.stream("POST", "/chat/completions", json=body) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == ": ping"
    assert json.loads(lines[-2][6:])["usage"]["total_tokens"] == 13
    assert "data: [DONE]" not in lines


def test_html_and_slow(http: httpx.Client) -> None:
    response = http.post("/chat/completions", json=chat("html"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == "<html>oops</html>"
    started = time.monotonic()
    events = sse_events(http, chat("slow=40 words=3", stream=True))
    assert events[-1] == "[DONE]"
    assert time.monotonic() - started >= 0.15


def test_completions_and_embeddings(http: httpx.Client, sdk: openai.OpenAI) -> None:
    text = http.post(
        "/completions", json={"model": "m", "prompt": ["a", "usage=3,2 words=2"]}
    ).json()
    assert text["object"] == "text_completion"
    assert text["choices"] == [
        {"index": 0, "text": "w0 w1", "finish_reason": "stop", "logprobs": None}
    ]
    assert text["usage"]["total_tokens"] == 5
    body = {"model": "m", "prompt": "x", "stream": True}
    with http.stream("POST", "/completions", json=body) as response:
        lines = [line[6:] for line in response.iter_lines() if line.startswith("data")]
    assert lines[-1] == "[DONE]"
    assert "".join(json.loads(line)["choices"][0]["text"] for line in lines[:-1]) == (
        "w0 w1 w2"
    )
    embed = http.post("/embeddings", json={"model": "e", "input": ["a", "b"]}).json()
    assert embed["object"] == "list"
    assert [item["embedding"] for item in embed["data"]] == [[0.1, 0.2, 0.3]] * 2
    assert embed["usage"] == {"prompt_tokens": 8, "total_tokens": 8}
    result = sdk.embeddings.create(model="e", input="usage=5,0")
    assert result.usage.prompt_tokens == 5
    assert result.data[0].embedding == pytest.approx([0.1, 0.2, 0.3], abs=1e-6)


def test_counts_and_reset(fake: FakeUpstream, http: httpx.Client) -> None:
    http.post("/chat/completions", json=chat("one"), headers={"X-Trace": "t1"})
    http.post("/embeddings", json={"model": "e", "input": "two"})
    http.get("/models")
    assert fake.calls == 2
    assert fake.paths == ["/v1/chat/completions", "/v1/embeddings"]
    assert fake.bodies[0]["messages"][0]["content"] == "one"
    assert fake.bodies[1]["input"] == "two"
    assert fake.headers[0]["x-trace"] == "t1"
    fake.reset()
    assert (fake.calls, fake.bodies, fake.paths, fake.headers) == (0, [], [], [])


def test_stats_endpoints(fake: FakeUpstream, http: httpx.Client) -> None:
    root = fake.url.removesuffix("/v1")
    http.post("/chat/completions", json=chat("hi"))
    assert httpx.get(f"{root}/__stats").json() == {"calls": 1}
    assert httpx.post(f"{root}/__reset").status_code == 200
    assert httpx.get(f"{root}/__stats").json() == {"calls": 0}
    assert fake.calls == 0


def test_errors_for_bad_requests(http: httpx.Client) -> None:
    bad = http.post("/chat/completions", content=b"not json")
    assert bad.status_code == 400
    assert "error" in bad.json()
    missing = http.get("/nope")
    assert missing.status_code == 404
    assert "error" in missing.json()
    models = http.get("/models").json()
    assert models["object"] == "list" and models["data"]


def test_fail_status_instance() -> None:
    with FakeUpstream(fail_status=503) as failing:
        response = httpx.post(f"{failing.url}/chat/completions", json=chat("hi"))
        assert response.status_code == 503
        assert response.json()["error"]["message"] == "fake failure 503"
        assert failing.calls == 1
        stats = httpx.get(failing.url.removesuffix("/v1") + "/__stats")
        assert stats.json() == {"calls": 1}


def test_api_key_required() -> None:
    with FakeUpstream(api_key="sk-right") as guarded:
        url = f"{guarded.url}/chat/completions"
        assert httpx.post(url, json=chat("hi")).status_code == 401
        wrong = {"Authorization": "Bearer sk-wrong"}
        assert httpx.post(url, json=chat("hi"), headers=wrong).status_code == 401
        right = {"Authorization": "Bearer sk-right"}
        assert httpx.post(url, json=chat("hi"), headers=right).status_code == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_standalone_process() -> None:
    port = _free_port()
    command = [sys.executable, str(UPSTREAM_SCRIPT), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--fail-status", "502"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        root = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10.0
        while True:
            try:
                stats = httpx.get(f"{root}/__stats", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        assert stats.json() == {"calls": 0}
        failed = httpx.post(f"{root}/v1/chat/completions", json=chat("hi"))
        assert failed.status_code == 502
        assert httpx.get(f"{root}/__stats").json() == {"calls": 1}
    finally:
        process.terminate()
        process.wait(10.0)
