"""Memory the offline demo's emulator keeps per turn spoken. Without an API key the app
runs the emulator in its own process, so whatever the emulator keeps of the user's
turns is the app's memory. Each run is a fresh process: the emulator (as the app starts
it, not recording) and a client over real TLS WebSockets speaking push-to-talk turns of
3 s (20 ms frames); RSS (after a garbage collection) after 3 warm-up turns and after
120 and 240 more. Median and range over runs. No budget; it should not grow with the
turns.

`python -m bench.bench_emulator_memory` (`make bench ARGS=emulator_memory`).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import ssl
import subprocess
import sys
from pathlib import Path

from bench.figures import over_runs
from bench.soak import rss_mb

RUNS = 3
TURN_S = 3.0
COUNTS = (120, 240)
PATH = "/ws/google.ai.generativelanguage.v1.GenerativeService.BidiGenerateContent"
SETUP = {
    "setup": {
        "model": "models/gemini-live-2.5-flash-preview",
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
    }
}


async def child() -> dict[str, float]:
    from websockets.asyncio.client import connect

    from emodesk.live.emulator.server import EmulatorServer
    from tests.support.emulator import tone

    server = EmulatorServer(speed=500.0)  # replies paced fast: the turns, not their pace
    await server.start()
    pcm = tone(TURN_S)
    blobs = [
        {"mimeType": "audio/pcm;rate=16000", "data": base64.b64encode(pcm[i : i + 640]).decode()}
        for i in range(0, len(pcm), 640)
    ]
    frames = [json.dumps({"realtimeInput": {"audio": blob}}) for blob in blobs]
    figures: dict[str, float] = {}
    context = ssl.create_default_context(cafile=server.ca_file)
    url = f"wss://127.0.0.1:{server.port}{PATH}"
    async with connect(url, ssl=context, additional_headers={"x-goog-api-key": "k"}) as ws:
        await ws.send(json.dumps(SETUP))
        await ws.recv()

        async def turn() -> None:
            await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
            for frame in frames:
                await ws.send(frame)
            await ws.send(json.dumps({"realtimeInput": {"activityEnd": {}}}))
            while "turnComplete" not in json.loads(await ws.recv()).get("serverContent", {}):
                pass

        for _ in range(3):
            await turn()
        gc.collect()
        start = rss_mb()
        done = 0
        for count in COUNTS:
            while done < count:
                await turn()
                done += 1
            gc.collect()
            figures[f"growth_{count}"] = rss_mb() - start
    await server.stop()
    return figures


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    runs: list[dict[str, float]] = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_emulator_memory", "--child"],
            cwd=root, capture_output=True, text=True, check=True,
        )  # fmt: skip
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{RUNS} runs, a fresh process each; push-to-talk turns of {TURN_S:.0f} s", flush=True)
    for count in COUNTS:
        over_runs(
            f"offline emulator's RSS growth after {count} turns ({count * TURN_S / 60:.0f} min "
            "spoken)",
            [r[f"growth_{count}"] for r in runs],
            "MB",
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        print(json.dumps(asyncio.run(child())))
    else:
        main()
