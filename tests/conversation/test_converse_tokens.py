"""`emodesk converse --token-url` as an organisation runs it: `emodesk token-server` in a
process of its own holding the API key, the client process without it, the emulator
(tokens required) minting on its REST side; the real SDK over TLS on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emodesk.dsp.wav import write_wav
from emodesk.live.emulator.rest import RestSide
from emodesk.live.emulator.server import EmulatorServer
from emodesk.live.tokens import is_token
from tests.support.keys import fake_api_key
from tests.support.speech import CALM, NORMAL, speech_16k, with_silence

PACE = "10"
ORG_KEY = fake_api_key("OrganisationKeyForTests")
SECRET = "a-client-secret-for-the-tests-0123"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def three_turns(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pcm = with_silence(
        speech_16k("Hello, I need some help with my order.", CALM),
        speech_16k("It still has not arrived.", NORMAL),
        speech_16k("Can you tell me where it is?", CALM),
        gap_s=0.8,
    )
    path = tmp_path_factory.mktemp("converse-tokens") / "speech.wav"
    write_wav(path, pcm, 16000)
    return path


def _client_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if ORG_KEY not in v}
    env.pop("GEMINI_API_KEY", None)
    env.update(EMODESK_CONVERSE_PACE=PACE, EMODESK_TOKEN_SECRET=SECRET)
    return env


@contextlib.asynccontextmanager
async def token_service(
    emulator: EmulatorServer, rest: RestSide, secret_file: Path
) -> AsyncIterator[tuple[str, list[str]]]:
    """`emodesk token-server` as a process; yields its token URL and its stderr lines."""
    assert emulator.certificate is not None
    env = dict(os.environ, GEMINI_API_KEY=ORG_KEY)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emodesk", "token-server", "--port", "0",
        "--client-secret-file", str(secret_file),
        "--endpoint", rest.url, "--ca-file", emulator.ca_file,
        "--cert", str(emulator.certificate.cert_file),
        "--key", str(emulator.certificate.key_file),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    log: list[str] = []

    async def collect() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            log.append(line.decode())

    collector = asyncio.create_task(collect())
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.search(r"(https://\S+/v1/token)", line)
        assert match, f"no URL in {line!r}; stderr: {''.join(log)}"
        yield match.group(1), log
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
        await asyncio.wait_for(collector, 10)


async def test_converse_with_a_token_url_survives_a_drop_on_a_second_token(
    three_turns: Path, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    emulator = EmulatorServer(
        speed=float(PACE), faults="drop@2", api_keys={ORG_KEY}, require_tokens=True
    )
    await emulator.start()
    try:
        async with (
            RestSide(emulator) as rest,
            token_service(emulator, rest, secret_file) as (
                url,
                service_log,
            ),
        ):
            env = _client_env()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "emodesk", "converse",
                "--audio-in", str(three_turns), "--db", str(tmp_path / "h.db"),
                "--endpoint", emulator.url, "--ca-file", emulator.ca_file, "--token-url", url,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
            )  # fmt: skip
            out_b, err_b = await asyncio.wait_for(proc.communicate(), 90)
            out, err = out_b.decode(), err_b.decode()
            assert proc.returncode == 0, err
            await asyncio.sleep(0.2)  # the service's last access lines
    finally:
        await emulator.stop()

    assert "notice (reconnecting)" in err  # the drop happened
    assert out.count("latency: first reply audio") == 3
    credentials = [c.api_key or "" for c in emulator.connections]
    assert len(credentials) >= 2 and all(is_token(c) for c in credentials)
    assert credentials[0] != credentials[1]  # a second token for the resumption
    assert emulator.connections[1].resumed_from is not None
    assert len(emulator.minted) >= 2
    # The key stayed on the service: not in the client's environment, output or log.
    assert ORG_KEY not in json.dumps(env) and "GEMINI_API_KEY" not in env
    assert ORG_KEY not in out and ORG_KEY not in err
    assert all(not is_token(c) or c not in out + err for c in credentials)
    # The service logged each request, without the key, the tokens or the secret.
    service = "".join(service_log)
    access = [json.loads(line.split(" ", 1)[1]) for line in service_log if ".access " in line]
    assert [a["status"] for a in access if a["path"] == "/v1/token"] == [200] * len(credentials)
    assert ORG_KEY not in service and SECRET not in service
    assert all(c not in service for c in credentials)


async def test_converse_reports_a_token_service_it_cannot_reach(
    three_turns: Path, tmp_path: Path
) -> None:
    async with EmulatorServer(require_tokens=True) as emulator:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "emodesk", "converse",
            "--audio-in", str(three_turns), "--db", str(tmp_path / "h.db"),
            "--endpoint", emulator.url, "--ca-file", emulator.ca_file,
            "--token-url", "https://127.0.0.1:9/v1/token",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=dict(_client_env(), EMODESK_CONVERSE_PACE="100"),
        )  # fmt: skip
        _, err_b = await asyncio.wait_for(proc.communicate(), 90)
    err = err_b.decode()
    assert proc.returncode == 1
    assert "cannot reach the token service at 127.0.0.1" in err
    assert "invalid_key" not in err and emulator.connections == []
