"""``python -m opusclip_lib.sandbox --port 8765 [--latency-ms 50] [--token-ms 20] [--unlimited]``.

A separate process, for benchmarks that must not share the GIL (or a core) with the client.
"""

from __future__ import annotations

import argparse

import uvicorn

from opusclip_lib.sandbox.app import build_app
from opusclip_lib.sandbox.config import Latency, SandboxConfig
from opusclip_lib.sandbox.server import uvicorn_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opusclip_lib.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="fixed latency for every endpoint")
    parser.add_argument("--token-ms", type=float, default=0.0,
                        help="fixed wait before each streamed token after the first")
    parser.add_argument("--unlimited", action="store_true",
                        help="turn every quota, rate limit and concurrency limit off")
    args = parser.parse_args(argv)
    config = SandboxConfig.unlimited() if args.unlimited else SandboxConfig()
    if args.latency_ms:
        config.set_latency("*", args.latency_ms)
    if args.token_ms:
        config.openai.token_latency = Latency.fixed(args.token_ms)
    root = f"http://{args.host}:{args.port}"
    print(f"sandbox: {root}/youtube/v3  {root}/openai/v1  {root}/stability  {root}/elevenlabs",
          flush=True)
    uvicorn.Server(uvicorn_config(build_app(config), host=args.host, port=args.port)).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
