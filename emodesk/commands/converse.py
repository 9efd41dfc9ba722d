"""`emodesk converse`: one headless conversation from a WAV file, through the same
controller as the desktop app.

Each utterance of the file (or the whole file, `--turns one`) becomes one push-to-talk
turn, streamed in real time; the command waits for each turn to close (and its reply to
play) before the next, prints the transcript, the readings and the per-turn latency, and
a summary of answered turns. Exit codes: 0 every turn was answered; 3 the file was gone
through but some turns were not (each named with its reason); 1 the conversation could
not be held or broke off (the reason on the last line). The CSV and `--audio-out` are
written for whatever was received, also on 1 and 3. With `--device` the microphone and speaker
are the real audio engine: the file then only sets how long each turn is held, and
"speak now" is printed once the microphone delivers.

Hidden knob for tests: EMODESK_CONVERSE_PACE=N runs the file clock (and the offline
demo's replies, and the reconnect back-off) N times faster than real time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

ENV_PACE = "EMODESK_CONVERSE_PACE"
MIC_RATE = 16000
EXIT_ANSWERED = 0
EXIT_FAILED = 1
EXIT_SOME_TURNS_NOT_ANSWERED = 3
REPLY_LIMIT_S = 60.0  # a reply (including a reconnect) that takes longer is a failure
DEVICE_TAIL_S = 0.5  # with --device, push-to-talk is held this much past the file's turn


class WatchedCapture:
    """The audio engine with a signal for "the microphone is really delivering now":
    opening a device takes a moment, and speech before that would be lost."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.live = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def start_capture(self, on_frame: Callable[[bytes], None]) -> None:
        self.live.clear()

        def first_then_forward(pcm: bytes) -> None:
            self.live.set()
            on_frame(pcm)

        self._engine.start_capture(first_then_forward)


class ConverseError(Exception):
    """The conversation could not go on; the message is the reason shown to the user."""


@dataclass
class EventLog:
    """What the controller said during the conversation, printed as it comes, and the
    waits of a turn, each ended early by a lost connection."""

    out: TextIO
    latencies: list[Any] = field(default_factory=list)
    readings: list[Any] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    closed: dict[int, Any] = field(default_factory=dict)  # turn -> TurnClosed
    turn_closed: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str = ""
    failed: asyncio.Event = field(default_factory=asyncio.Event)  # the connection is gone
    mic_failure: str = ""
    mic_failed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_event(self, event: Any) -> None:
        from emodesk.conversation import api

        match event:
            case api.TurnClosed():
                self.closed[event.turn] = event
                self.turn_closed.set()
                if event.user_text:
                    self._line(f"[turn {event.turn}] you: {event.user_text}")
                if event.outcome is api.TurnOutcome.FAILED:
                    self._line(f"[turn {event.turn}] not answered: {event.reason}")
                elif event.model_text:
                    self._line(f"[turn {event.turn}] model: {event.model_text}")
            case api.ReadingAdded():
                self.readings.append(event)
                extra = ""
                if event.arousal is not None and event.valence is not None:
                    extra = f" arousal {event.arousal:+.2f} valence {event.valence:+.2f}"
                self._line(
                    f"[turn {event.turn}] reading ({event.source}): {event.emotion} "
                    f"{event.confidence:.2f} energy {event.energy_level}{extra}; "
                    f"trend {event.trend}{' ESCALATE' if event.escalate else ''}"
                )
            case api.TopicChanged():
                self._line(f"topic: {event.title} ({event.file})")
            case api.TrendChanged(escalate=True):
                self._line(f"advice: {event.advice}")
            case api.TurnLatency():
                self.latencies.append(event)
                self._line(
                    f"[turn {event.turn}] latency: first reply audio {_ms(event.to_first_audio_s)}"
                    f", first played {_ms(event.to_first_played_s)}"
                )
            case api.Notice():
                self._line(f"notice ({event.kind.value}): {event.message}", err=True)
                if event.kind is api.NoticeKind.MIC_LOST:
                    self.mic_failure = event.message
                    self.mic_failed.set()
            case api.IntentRefused():
                self.refusals.append(f"{event.intent}: {event.reason}")
            case api.StateChanged(state=api.ConversationState.ERROR):
                self.failure = event.detail or "the connection failed"
                self.failed.set()
            case api.StateChanged(state=api.ConversationState.OFFLINE):
                self.failure = f"the connection closed: {event.detail or 'by the server'}"
                self.failed.set()

    async def until(
        self, work: Awaitable[T], limit_s: float, too_long: str, *, mic: bool = False
    ) -> T:
        """`work`'s result, unless the connection fails first (or, with `mic`, the
        microphone does) or `limit_s` passes: then ConverseError with the reason. Every
        wait of a turn goes through here: a lost connection stops the file microphone
        and ends the reply, so what the turn waits for may never come."""
        task = asyncio.ensure_future(work)
        stops = [asyncio.ensure_future(self.failed.wait())]
        if mic:
            stops.append(asyncio.ensure_future(self.mic_failed.wait()))
        try:
            await asyncio.wait([task, *stops], timeout=limit_s, return_when="FIRST_COMPLETED")
        finally:
            for pending in (task, *stops):
                pending.cancel()
        if self.failed.is_set():
            raise ConverseError(self.failure)
        if mic and self.mic_failed.is_set():
            raise ConverseError(f"the microphone failed: {self.mic_failure}")
        if not task.done() or task.cancelled():
            raise ConverseError(too_long)
        try:
            return task.result()
        except TimeoutError:
            raise ConverseError(too_long) from None

    async def closes(self, count: int) -> None:
        """Wait until `count` turns have closed."""
        while len(self.closed) < count:
            self.turn_closed.clear()
            await self.turn_closed.wait()

    def unanswered(self) -> list[Any]:
        from emodesk.conversation.api import TurnOutcome

        return [c for c in self.closed.values() if c.outcome is not TurnOutcome.COMPLETED]

    def _line(self, text: str, err: bool = False) -> None:
        print(text, file=sys.stderr if err else self.out, flush=True)


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


def _pace() -> float:
    raw = os.environ.get(ENV_PACE, "").strip()
    if not raw:
        return 1.0
    try:
        pace = float(raw)
    except ValueError:
        raise ConverseError(f"{ENV_PACE} must be a number, got {raw!r}") from None
    if not 0.1 <= pace <= 1000:
        raise ConverseError(f"{ENV_PACE} must be within 0.1-1000, got {pace}")
    return pace


async def _converse(args: argparse.Namespace, out: TextIO) -> int:
    from emodesk.conversation.connection import ConnectionChoiceError, choose_connection
    from emodesk.conversation.controller import Controller
    from emodesk.conversation.file_audio import FileAudio
    from emodesk.conversation.stack import build_controller, start_emulator
    from emodesk.conversation.tools.folders import FolderTools
    from emodesk.core.consent import ConsentRecord
    from emodesk.core.export import unwritable_reason
    from emodesk.core.profiles import get_profile
    from emodesk.core.settings import AppSettings
    from emodesk.dsp.vad import segment_utterances
    from emodesk.dsp.wav import WavError, read_wav, write_wav
    from emodesk.live.credentials import CredentialError, load_api_key
    from emodesk.live.tokens import ENV_TOKEN_URL
    from emodesk.store import NotAHistory, SessionStore, StoreError, default_history_path

    pace = _pace()
    try:
        pcm, duration = read_wav(
            args.audio_in,
            on_warning=lambda message: print(f"emodesk converse: {message}", file=sys.stderr),
        )
    except (WavError, OSError) as exc:
        raise ConverseError(f"cannot read --audio-in: {exc}") from exc
    one_turn = [(0, int(pcm.size))]
    segments = one_turn if args.turns == "one" else segment_utterances(pcm, MIC_RATE)
    if not segments or pcm.size == 0:
        raise ConverseError(f"{args.audio_in}: no speech found ({duration:.1f} s of audio)")
    try:
        get_profile(args.profile)
    except KeyError as exc:
        raise ConverseError(str(exc.args[0])) from None
    if args.device and args.audio_out:
        raise ConverseError("--audio-out records the replies of a file conversation, not --device")
    # Before connecting: a conversation whose results cannot be saved is wasted.
    for option, path in (("--csv", args.csv), ("--audio-out", args.audio_out)):
        if path and (reason := unwritable_reason(path)):
            raise ConverseError(f"cannot write {option}: {reason}")
    if args.device:
        await asyncio.to_thread(_check_microphone)

    token_url = getattr(args, "token_url", None) or os.environ.get(ENV_TOKEN_URL, "").strip()
    try:
        if token_url:  # the organisation's token service: no API key on this machine
            plan = choose_connection(args.endpoint, args.ca_file, None, token_url=token_url)
        else:
            plan = choose_connection(args.endpoint, args.ca_file, load_api_key())
    except (ConnectionChoiceError, CredentialError) as exc:
        raise ConverseError(str(exc)) from exc

    try:
        store = SessionStore(args.db or default_history_path(), named_by_user=bool(args.db))
    except NotAHistory as exc:  # the user's own file: refused, left as it was
        raise ConverseError(f"--db {exc}") from exc
    except (StoreError, OSError) as exc:
        raise ConverseError(f"cannot open the session history: {exc}") from exc
    if store.open_report.message:
        print(f"emodesk converse: {store.open_report.message}", file=sys.stderr, flush=True)
    try:
        folders: FolderTools = await _folder_tools(args, out)
    except BaseException:
        store.close()
        raise

    loop = asyncio.get_running_loop()
    report = EventLog(out)
    broke_off = ""
    emulator: Any = None
    file_audio: FileAudio | None = None
    engine: Any = None
    controller: Controller | None = None
    try:
        connection = plan.connection
        if plan.start_emulator:
            print(plan.note, file=sys.stderr, flush=True)
            connection, emulator = await start_emulator(plan, speed=pace)
        if args.device:
            from emodesk.audio.engine import AudioEngine

            engine = AudioEngine(loop)
            engine.start()
            watched = WatchedCapture(engine)
            audio: Any = watched
        else:
            file_audio = FileAudio(pcm, pace=pace)
            audio = file_audio

        consent = ConsentRecord.grant() if args.consent == "yes" else None
        settings = AppSettings(voice=args.voice, profile=args.profile, consent=consent)
        controller = build_controller(
            audio=audio,
            store=store,
            settings=settings,
            connection=connection,
            pace=pace,
            tools=folders.tools,
        )
        controller.subscribe(report.on_event)
        if consent is not None:
            store.record_consent(consent)
        if not await controller.connect():
            raise ConverseError(f"cannot connect: {report.failure or controller.state.value}")
        print(f"session {controller.session_id} ({len(segments)} turns)", file=out, flush=True)
        try:
            for number, (start, end) in enumerate(segments, 1):
                await _one_turn(controller, report, number, start, end, pace, file_audio, audio)
        except ConverseError as exc:  # broke off: what was received is still written
            broke_off = str(exc)
        session_id = controller.session_id
        await controller.drain()
        if args.csv and session_id is not None:
            if not await controller.export(args.csv, "csv", session_id):
                # One sentence ("Could not write X: why"), not the refusal's prefixes again.
                why = report.refusals[-1].removeprefix("export: ").removeprefix("export failed: ")
                raise ConverseError(why)
            print(f"timeline written to {args.csv}", file=out, flush=True)
        if session_id is not None and consent is not None:
            _print_session_report(store, session_id, args.profile, out)
    finally:
        if controller is not None:
            await controller.close()
        with contextlib.suppress(Exception):
            store.close()
        folders.close()
        if engine is not None:
            engine.close()
        if emulator is not None:
            await emulator.stop()
    if args.audio_out and file_audio is not None:
        played, rate = file_audio.recorded()
        try:
            write_wav(args.audio_out, played, rate)
        except (WavError, OSError) as exc:
            raise ConverseError(f"cannot write --audio-out: {exc}") from exc
        print(f"reply audio written to {args.audio_out}", file=out, flush=True)
    _summary(report, out, planned=len(segments))
    if broke_off:
        raise ConverseError(broke_off)
    return EXIT_SOME_TURNS_NOT_ANSWERED if report.unanswered() else EXIT_ANSWERED


async def press_when_ready(controller: Any, report: EventLog) -> None:
    """Press push-to-talk once the session is ready. A goAway or a drop can arrive
    between "ready" and the press (the server's goAway after a reply comes while the
    reply still plays): the press is then refused while the link is restored, and made
    again once it is, as a user would press again. ConverseError if the session is not
    ready within REPLY_LIMIT_S or the press is refused for any other reason."""
    from emodesk.conversation.api import ConversationState as S

    loop = asyncio.get_running_loop()
    deadline = loop.time() + REPLY_LIMIT_S
    while True:
        left_s = max(0.0, deadline - loop.time())
        ready = await report.until(
            controller.wait_for_state(S.READY, limit_s=left_s),
            left_s + 1,
            f"the session is still {controller.state.value}",
        )
        if not ready:
            raise ConverseError(
                f"the session is still {controller.state.value} after {REPLY_LIMIT_S:.0f} s"
            )
        if controller.push_to_talk_down():
            return
        if controller.state not in (S.CONNECTING, S.RECONNECTING):
            raise ConverseError(f"push-to-talk refused: {report.refusals[-1]}")


async def _one_turn(
    controller: Any,
    report: EventLog,
    number: int,
    start: int,
    end: int,
    pace: float,
    file_audio: Any,
    audio: Any,
) -> None:
    """Speak one utterance of the file and wait until its turn closes and its reply
    has played. ConverseError when the conversation cannot go on."""
    hold_s = (end - start) / MIC_RATE / pace
    if file_audio is not None:
        file_audio.seek(start)
    await press_when_ready(controller, report)
    try:
        if file_audio is not None:
            await report.until(
                file_audio.wait_position(end, limit_s=hold_s + 10.0),
                hold_s + 11.0,
                "the file microphone stalled",
            )
        else:
            await report.until(
                audio.live.wait(), 10.0, "the microphone delivers no audio", mic=True
            )
            print(f"speak now ({hold_s:.1f} s)", file=report.out, flush=True)
            await report.until(
                asyncio.sleep(hold_s + DEVICE_TAIL_S),
                hold_s + DEVICE_TAIL_S + 5.0,
                "the turn did not end",
                mic=True,
            )
    finally:
        controller.push_to_talk_up()  # refused harmlessly if a failure ended the turn
    # The controller closes every turn (answered, or failed with a reason) in bounded
    # time; this limit only guards against a bug.
    await report.until(report.closes(number), REPLY_LIMIT_S + 1, f"turn {number} did not close")
    if file_audio is not None:
        await report.until(
            file_audio.wait_played(limit_s=REPLY_LIMIT_S),
            REPLY_LIMIT_S + 1,
            f"the reply did not finish playing within {REPLY_LIMIT_S:.0f} s",
        )


def _check_microphone() -> None:
    """With --device, a missing microphone is an error before connecting, not an empty
    turn sent to the model."""
    from emodesk.audio.devices import AudioDeviceError, choose_device, open_portaudio

    try:
        pa = open_portaudio()
    except AudioDeviceError as exc:
        raise ConverseError(f"--device: {exc}") from exc
    try:
        choose_device(pa, None, "input")
        choose_device(pa, None, "output")
    except AudioDeviceError as exc:
        raise ConverseError(f"--device: {exc} (see `emodesk devices`)") from exc
    finally:
        pa.terminate()


async def _folder_tools(args: argparse.Namespace, out: TextIO) -> Any:
    """The tools of --knowledge and --course, their folders indexed (in the app's data
    folder, not in them); each only for the profile that uses it."""
    from emodesk.conversation.tools.folders import (
        FolderTools,
        KnowledgeError,
        open_folder_tools,
    )
    from emodesk.core.profiles import get_profile
    from emodesk.core.tools import NEXT_TOPIC, SEARCH_KNOWLEDGE_BASE

    knowledge, course = getattr(args, "knowledge", None), getattr(args, "course", None)
    profile = get_profile(args.profile)
    for option, folder, tool, wanted in (
        ("--knowledge", knowledge, SEARCH_KNOWLEDGE_BASE, "support"),
        ("--course", course, NEXT_TOPIC, "tutor"),
    ):
        if folder and tool not in profile.tools:
            raise ConverseError(f"{option} is for the {wanted} profile: add --profile {wanted}")
    if not knowledge and not course:
        return FolderTools()
    try:
        folders = await open_folder_tools(knowledge, course)
    except KnowledgeError as exc:
        raise ConverseError(f"cannot use the folder: {exc}") from exc
    for folder, count in folders.files.items():
        print(f"{folder}: {count} files indexed", file=out, flush=True)
    return folders


def _print_session_report(store: Any, session_id: str, profile_key: str, out: TextIO) -> None:
    """Profiles that promise a session report (wellness) print it at the end."""
    from emodesk.core.profiles import get_profile
    from emodesk.core.report import session_report

    profile = get_profile(profile_key)
    if not profile.offers_session_report:
        return
    text = session_report(store.session_metadata(session_id), store.readings(session_id), profile)
    print("\n" + text, file=out, flush=True)


def _summary(report: EventLog, out: TextIO, planned: int) -> None:
    firsts = [t.to_first_audio_s for t in report.latencies if t.to_first_audio_s is not None]
    played = [t.to_first_played_s for t in report.latencies if t.to_first_played_s is not None]
    if firsts:
        print(
            f"latency over {len(firsts)} turns: first reply audio median "
            f"{_ms(statistics.median(firsts))}, max {_ms(max(firsts))}; first played "
            f"median {_ms(statistics.median(played) if played else None)}",
            file=out,
            flush=True,
        )
    print(f"{len(report.readings)} readings", file=out, flush=True)
    unanswered = report.unanswered()
    answered = len(report.closed) - len(unanswered)
    line = f"answered {answered} of {planned} turns"
    if unanswered:
        line += "; not answered: " + "; ".join(
            f"turn {c.turn} ({c.reason or c.outcome.value})" for c in unanswered
        )
    if len(report.closed) < planned:
        line += f"; not sent: {planned - len(report.closed)}"
    print(line, file=out, flush=True)


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_converse(args, sys.stdout))
    except ConverseError as exc:
        print(f"emodesk converse: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a failure nobody foresaw: still one line, not a traceback
        log.debug("converse failed", exc_info=True)
        print(f"emodesk converse: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
