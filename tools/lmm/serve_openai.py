#!/usr/bin/env python3
"""A real OpenAI-compatible chat server over the NumPy LLaVA-1.5 (tools/lmm/numpy_llava.py) for
the tests of crates/atlas-lmm-endpoint: stdlib `http.server`, NumPy and Pillow only.

Endpoints:
  POST /v1/chat/completions  OpenAI chat request: `messages` with string content or content
                             parts `{"type": "text", "text": ...}` and `{"type": "image_url",
                             "image_url": {"url": "data:image/png;base64,..."}}`; `max_tokens`
                             (or `max_completion_tokens`, default 64), `temperature` (0 or absent:
                             greedy), `seed` (sampling stream when temperature > 0),
                             `return_token_ids` (vLLM's extension: `prompt_token_ids` and
                             `choices[0].token_ids` in the response, new ids with `</s>`). The
                             conversation is rendered in the llava_v1 template, each user turn's
                             images as `<image>\\n` before its text (LLaVA's `run_llava` order).
                             Remote image URLs are refused (400): this server has no network.
  GET  /v1/models            the one model id (`--model-id`, default the directory's name).
  GET  /health               200 "ok".
  GET  /stats                {"requests": n, "in_flight": n, "max_in_flight": n} (lets a test
                             check the client's concurrency bound).

Fault injection for tests (so one server exercises every error path):
  --fail-mode MODE           every chat request fails with MODE;
  --fault-triggers           a request whose text contains `[[fault:MODE]]` fails with MODE, and
                             `[[fault:MODExN]]` fails the first N requests carrying that exact
                             text, then answers (retries can succeed). Triggers are removed from
                             the text before it reaches the model.
  --fail-text TEXT           a request whose text contains TEXT fails with 500 (every time: the
                             pipeline's LMM test makes the questions about one class fail).
  MODE: 500 (HTTP 500 JSON error), 503, 429 (with Retry-After: 0), malformed (200 with a body
  that is not JSON), nochoices (200 JSON without `choices`), noimages (400 "image input is not
  supported"), slow (answer after `--slow-seconds`, default 5), drop (close the connection
  without a response).

The server prints `listening on http://HOST:PORT` on stdout once it accepts connections
(`--port 0` picks a free port). Usage:
  python3 tools/lmm/serve_openai.py --model crates/atlas-llava/tests/fixtures/model --port 0
"""
import argparse
import base64
import binascii
import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy_llava  # noqa: E402

MODES = {"500", "503", "429", "malformed", "nochoices", "noimages", "slow", "drop"}
TRIGGER = re.compile(r"\[\[fault:([a-z0-9]+?)(?:x(\d+))?\]\]")


class BadRequest(Exception):
    """A request the server refuses with 400 and this message."""


class State:
    """Shared server state: the model, options, counters."""

    def __init__(self, args):
        self.model = numpy_llava.Llava(args.model)
        self.model_id = args.model_id or Path(args.model).name
        self.args = args
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.trigger_counts = {}

    def fault_for(self, text):
        """The fault this request gets (or None) and the text without triggers."""
        clean = TRIGGER.sub("", text)
        if self.args.fail_mode:
            return self.args.fail_mode, clean
        if self.args.fail_text and self.args.fail_text in text:
            return "500", clean
        if not self.args.fault_triggers:
            return None, text
        m = TRIGGER.search(text)
        if not m:
            return None, clean
        mode, times = m.group(1), m.group(2)
        if mode not in MODES:
            raise BadRequest(f"unknown fault mode {mode!r} (known: {sorted(MODES)})")
        if times is None:
            return mode, clean
        with self.lock:
            seen = self.trigger_counts.get(text, 0)
            self.trigger_counts[text] = seen + 1
        return (mode if seen < int(times) else None), clean


def decode_image(url, model):
    if not url.startswith("data:"):
        raise BadRequest("only data: URLs are accepted (this server has no network access)")
    head, _, payload = url.partition(",")
    if not head.endswith(";base64"):
        raise BadRequest("image data URL must be base64 encoded (data:image/...;base64,...)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRequest(f"image data URL is not valid base64: {e}") from e
    try:
        image = model.load_image(data)
        image.load()
    except Exception as e:  # Pillow raises several types for undecodable bytes
        raise BadRequest(f"cannot decode the image: {e}") from e
    return image


def conversation(body, model):
    """(llava_v1 turns, images, concatenated text for fault triggers) of a chat request."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("`messages` must be a non-empty list")
    system = numpy_llava.LLAVA_V1_SYSTEM
    turns, images, all_text = [], [], []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise BadRequest(f"messages[{i}] must be an object")
        role, content = msg.get("role"), msg.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise BadRequest(f"messages[{i}].content must be a string or a list of parts")
        text, n_images = "", 0
        for j, part in enumerate(parts):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                text += str(part.get("text", ""))
            elif kind == "image_url":
                url = (part.get("image_url") or {}).get("url", "")
                images.append(decode_image(url, model))
                n_images += 1
            else:
                raise BadRequest(f"messages[{i}].content[{j}] has unsupported type {kind!r}")
        all_text.append(text)
        if role == "system":
            system = text
        elif role in ("user", "assistant"):
            r = 0 if role == "user" else 1
            if r == 1 and n_images:
                raise BadRequest("assistant messages cannot hold images")
            turns.append((r, "<image>\n" * n_images + text))
        else:
            raise BadRequest(f"messages[{i}].role {role!r} is not system, user or assistant")
    if not turns or turns[-1][0] != 0:
        raise BadRequest("the last message must be from the user")
    return system, turns, images, "\n".join(all_text)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main

    def log_message(self, fmt, *args):
        if self.state.args.verbose:
            sys.stderr.write("serve_openai: " + fmt % args + "\n")

    def send_json(self, code, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_raw(code, data, "application/json", headers)

    def send_raw(self, code, data, ctype, headers=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, message, kind="invalid_request_error", headers=None):
        self.send_json(code, {"error": {"message": message, "type": kind, "code": code}}, headers)

    def do_GET(self):
        st = self.state
        if self.path == "/health":
            self.send_raw(200, b"ok", "text/plain")
        elif self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": st.model_id, "object": "model", "owned_by": "clip-atlas"}]})
        elif self.path == "/stats":
            with st.lock:
                self.send_json(200, {"requests": st.requests, "in_flight": st.in_flight, "max_in_flight": st.max_in_flight})
        else:
            self.error(404, f"no route GET {self.path}")

    def do_POST(self):
        st = self.state
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.error(404, f"no route POST {self.path}")
            return
        with st.lock:
            st.requests += 1
            st.in_flight += 1
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
        try:
            self.chat()
        finally:
            with st.lock:
                st.in_flight -= 1

    def chat(self):
        st = self.state
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict):
                raise BadRequest("the request body must be a JSON object")
            system, turns, images, text = conversation(body, st.model)
            fault, _ = st.fault_for(text)
            turns = [(r, TRIGGER.sub("", t)) for r, t in turns]
            max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 64)
            temperature = float(body.get("temperature") or 0.0)
            seed = body.get("seed")
            return_ids = bool(body.get("return_token_ids"))
            if max_tokens < 1 or temperature < 0:
                raise BadRequest("max_tokens must be >= 1 and temperature >= 0")
        except BadRequest as e:
            self.error(400, str(e))
            return
        except (ValueError, TypeError) as e:
            self.error(400, f"malformed request: {e}")
            return
        if fault and self.fault(fault, images):
            return
        model = st.model
        prompt = numpy_llava.llava_v1_prompt(turns + [(1, None)], system=system)
        ids = model.tokenizer.encode(prompt.replace("<image>", "<image>" * model.image_tokens))
        pixels = [numpy_llava.preprocess(im, model.proc) for im in images]
        try:
            new = model.generate(ids, pixels, max_tokens, temperature, seed)
        except ValueError as e:
            self.error(400, str(e))
            return
        stopped = bool(new) and new[-1] in model.eos_ids
        answer = model.tokenizer.decode(new, skip_special_tokens=True)
        extra = {"prompt_token_ids": ids} if return_ids else {}
        choice_ids = {"token_ids": new} if return_ids else {}
        self.send_json(200, {
            **extra,
            "id": "chatcmpl-" + uuid.uuid4().hex,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": st.model_id,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop" if stopped else "length",
                **choice_ids,
            }],
            "usage": {"prompt_tokens": len(ids), "completion_tokens": len(new), "total_tokens": len(ids) + len(new)},
        })

    def fault(self, mode, images):
        """Answer with the injected fault; False when the request should still be served."""
        if mode == "500":
            self.error(500, "injected internal server error", "server_error")
        elif mode == "503":
            self.error(503, "injected: model is loading", "server_error")
        elif mode == "429":
            self.error(429, "injected: rate limit reached", "rate_limit_error", {"Retry-After": "0"})
        elif mode == "malformed":
            self.send_raw(200, b"<html>this is not JSON</html>", "text/html")
        elif mode == "nochoices":
            self.send_json(200, {"id": "chatcmpl-x", "object": "chat.completion", "choices": []})
        elif mode == "noimages":
            if not images:
                return False
            self.error(400, "image input is not supported by this model")
        elif mode == "slow":
            time.sleep(self.state.args.slow_seconds)
            return False
        elif mode == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
        return True


class Server(ThreadingHTTPServer):
    """Quiet about connections a client (or the `drop` fault) closed early."""

    def handle_error(self, request, client_address):
        if Handler.state.args.verbose:
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = Path(__file__).resolve().parents[2]
    ap.add_argument("--model", default=str(root / "crates/atlas-llava/tests/fixtures/model"))
    ap.add_argument("--model-id", default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--fail-mode", choices=sorted(MODES), default=None)
    ap.add_argument("--fault-triggers", action="store_true")
    ap.add_argument("--fail-text", default=None,
                    help="every chat request whose text contains this string gets HTTP 500")
    ap.add_argument("--slow-seconds", type=float, default=5.0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    Handler.state = State(args)
    server = Server((args.host, args.port), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
