"""``opusclip bench transcribe``: chunked transcription fanned out, against its ideal speed-up.

A long talk (the sample's audio looped to ``--minutes``, made with ffmpeg) is cut at silences
into chunks under ``--chunk-mb`` and sent to the sandbox served on loopback in a child process
(its CPU is not the client's), each upload answering after ``--latency-ms``. The same chunks go
out one at a time, then ``C`` at a time for each ``--concurrency`` level, each run on an empty
client cache. The chunks are planned (a silence scan of the whole talk), cut and sent once
beforehand, untimed, so the runs time the fan-out and the fan-in only. The sandbox remembers
what each upload said, so every timed upload costs its latency, not a second decode on the
cores the client is measured on (a provider decodes on its own machines, whatever the
client's concurrency).

Ideal speed-up at ``C``: ``n / ceil(n / C)`` for ``n`` chunks (the last wave may be partial).
Target: at least 0.8 of it at ``C = 4``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path

from opusclip_lib.bench.pipeline import child_sandbox, serve_until_stdin_closes
from opusclip_lib.media import atomic_output, probe, run_ffmpeg, sample_video
from opusclip_lib.media.audio import AUDIO_ARGS
from opusclip_lib.sandbox.endpoints import sandbox_config, sandbox_endpoints
from opusclip_lib.workflow import UNLIMITED, Transcriber, open_services

TARGET_RATIO = 0.8
TARGET_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class Run:
    concurrency: int
    chunks: int
    seconds: float
    speedup: float
    ideal: float

    @property
    def ratio(self) -> float:
        return self.speedup / self.ideal


def sandbox_process(latency_ms: float) -> AbstractContextManager[str]:
    """A loopback sandbox in its own process, ``latency_ms`` per upload; yields its root URL."""
    return child_sandbox(__spec__.name if __spec__ else __name__, str(latency_ms))


async def long_talk(dest: Path, minutes: float) -> Path:
    """The sample's speech audio, looped to ``minutes``."""
    loops = math.ceil(minutes * 60 / ((await probe(sample_video())).duration_s or 60))
    with atomic_output(dest) as temp:
        await run_ffmpeg(["-stream_loop", str(loops - 1), "-i", str(sample_video()),
                          "-t", f"{minutes * 60:.0f}", *AUDIO_ARGS], output=temp)
    return dest


async def measure(args: argparse.Namespace, root: str, folder: Path) -> list[Run]:
    audio = await long_talk(folder / "talk.ogg", args.minutes)
    chunk_bytes = int(args.chunk_mb * 1024 * 1024)
    duration_s = (await probe(audio)).duration_s or 0.0
    scratch = folder / "chunks"
    runs: list[Run] = []
    async with open_services(sandbox_endpoints(root), limits=UNLIMITED,
                             cached=False) as services:
        warm_up = Transcriber(services.openai, folder / "cache-warm-up",
                              max_chunk_bytes=chunk_bytes, concurrency=max(args.concurrency))
        plan = await warm_up.plan(audio, duration_s)   # planned, cut and sent once, untimed
        await warm_up.chunks(audio, plan, scratch, source="bench")
        for concurrency in [1, *args.concurrency]:
            transcriber = Transcriber(services.openai, folder / f"cache-{concurrency}",
                                      max_chunk_bytes=chunk_bytes, concurrency=concurrency)
            started = time.perf_counter()
            parts = await transcriber.chunks(audio, plan, scratch, source="bench")
            seconds = time.perf_counter() - started
            chunks = len(parts)
            sequential = runs[0].seconds if runs else seconds
            ideal = chunks / math.ceil(chunks / concurrency)
            run = Run(concurrency, chunks, seconds, sequential / seconds, ideal)
            runs.append(run)
            print(f"  C={concurrency:<3} {chunks:>4} chunks {seconds:>8.2f} s  speed-up "
                  f"{run.speedup:5.2f}  ideal {ideal:5.2f}  ratio {run.ratio:5.2f}", flush=True)
    return runs


def plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    levels = [r.concurrency for r in runs]
    ax.plot(levels, [r.ideal for r in runs], "--", color="grey", label="ideal")
    ax.plot(levels, [r.speedup for r in runs], "o-", label="measured")
    ax.set(xlabel="chunks in flight (C)", ylabel="speed-up over one at a time",
           title=f"Chunked transcription, {runs[0].chunks} chunks")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # the child process of sandbox_process()
        latency = {"openai.audio.transcriptions": float(argv[1])}
        asyncio.run(serve_until_stdin_closes(sandbox_config(latency)))
        return 0
    parser = argparse.ArgumentParser(prog="opusclip bench transcribe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0, help="length of the talk")
    parser.add_argument("--chunk-mb", type=float, default=0.5,
                        help="largest upload (small, to make many chunks)")
    parser.add_argument("--latency-ms", type=float, default=1000.0,
                        help="the sandbox's answer time per upload")
    parser.add_argument("--concurrency", type=lambda text: [int(v) for v in text.split(",")],
                        default=[2, 4, 8])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    print(f"a {args.minutes:g}-minute talk, chunks under {args.chunk_mb:g} MB, "
          f"{args.latency_ms:g} ms per upload")
    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as temp, \
            sandbox_process(args.latency_ms) as root:
        runs = asyncio.run(measure(args, root, Path(temp)))
    target = next((r for r in runs if r.concurrency == TARGET_CONCURRENCY), None)
    missed = []
    if target is not None:
        ok = target.ratio >= TARGET_RATIO
        print(f"\n  {'PASS' if ok else 'MISS'} C={TARGET_CONCURRENCY}: {target.ratio:.2f} of the "
              f"ideal speed-up (target {TARGET_RATIO})")
        if not ok:
            missed.append("speed-up at C=4")
    else:
        print(f"\n  C={TARGET_CONCURRENCY} was not measured: no target checked")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": {k: v for k, v in vars(args).items()
                                                      if k not in {"json", "plot"}},
                                         "runs": [asdict(r) | {"ratio": r.ratio} for r in runs]},
                                        indent=2, default=str))
    if args.plot:
        plot(runs, args.plot)
    print(f"\n{len(missed)} target(s) missed" if missed else "\nall targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
