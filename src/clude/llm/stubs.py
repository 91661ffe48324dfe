"""Scripted OpenAI, Anthropic and Gemini stub servers on loopback; `python -m clude.llm.stubs` serves one by hand."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clude.llm.stub_anthropic import AnthropicStub
from clude.llm.stub_gemini import GeminiStub
from clude.llm.stub_openai import OpenAIStub
from clude.llm.stub_responses import ResponsesStub
from clude.llm.stub_server import StubServer, serve_forever

__all__ = ["AnthropicStub", "GeminiStub", "OpenAIStub", "ResponsesStub", "StubServer", "main"]

STUBS: dict[str, type[StubServer]] = {"openai": OpenAIStub, "anthropic": AnthropicStub, "gemini": GeminiStub,
                                      "responses": ResponsesStub}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clude.llm.stubs",
                                     description="Serve a scripted model on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("wire", choices=sorted(STUBS), help="the wire format to speak")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    parser.add_argument("--model", default="stub-model", help="the model name the model listing reports")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--reply", help="answer every request with this text")
    source.add_argument("--script", type=Path,
                        help="a JSON file holding a list of responses, served in order")
    parser.add_argument("--verbose", action="store_true", help="log each request")
    args = parser.parse_args(argv)
    if args.script is not None:
        script = json.loads(args.script.read_text(encoding="utf-8"))
        if not isinstance(script, list):
            parser.error("the script file must hold a JSON list of responses")
    else:
        text = args.reply if args.reply is not None else "OK"
        script = lambda messages, tools: text  # noqa: E731 - the same answer to every request
    stub = STUBS[args.wire](script, model=args.model, port=args.port, verbose=args.verbose)
    serve_forever(stub)
    return 0


if __name__ == "__main__":
    sys.exit(main())
