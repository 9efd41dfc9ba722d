import itertools

import numpy as np

from emodesk.dsp.levels import frame_levels_dbfs
from emodesk.dsp.vad import EnergyVad, segment_utterances
from tests.support.speech import AGITATED, CALM, NORMAL, SENTENCES, speech_16k, with_silence

RATE = 16000


def test_finds_each_sentence_between_silences() -> None:
    parts = [speech_16k(s, p) for s, p in zip(SENTENCES, (NORMAL, CALM, AGITATED), strict=True)]
    pcm = with_silence(*parts, gap_s=1.5)
    noise = np.random.default_rng(0).normal(0, 60, pcm.size)  # a quiet room, about -55 dBFS
    ranges = segment_utterances((pcm + noise).astype(np.int16), RATE)
    assert len(ranges) == 3
    starts = np.cumsum([int(1.5 * RATE) + (0 if i == 0 else parts[i - 1].size) for i in range(3)])
    for (start, end), true_start, part in zip(ranges, starts, parts, strict=True):
        audible = np.flatnonzero(frame_levels_dbfs(part, 160) > -40.0)
        assert start <= true_start + audible[0] * 160
        assert end >= true_start + (audible[-1] + 1) * 160  # the word tails are kept
        assert 0 <= start < end <= pcm.size


def test_a_monologue_with_short_pauses_is_cut_in_its_pauses_into_bounded_pieces() -> None:
    # 60 s of 1.7 s phrases with 0.3 s breaths: never the 500 ms pause that ends one.
    t = np.arange(60 * RATE) / RATE
    phrase = (t % 2.0) < 1.7
    pcm = np.where(phrase, 8000 * np.sin(2 * np.pi * 180 * t), 0.0).astype(np.int16)
    ranges = segment_utterances(pcm, RATE, max_utterance_s=15.0)
    assert len(ranges) >= 4
    assert ranges[0][0] == 0 and ranges[-1][1] >= int(59.7 * RATE)  # the last phrase's end
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end == start  # contiguous: nothing lost between pieces
    for start, end in ranges[:-1]:
        assert 5 * RATE <= end - start <= 15 * RATE
    assert ranges[-1][1] - ranges[-1][0] <= 15 * RATE
    for _, cut in ranges[:-1]:
        assert not phrase[cut], f"cut at {cut / RATE:.2f} s, inside a phrase"


def test_without_a_bound_a_monologue_is_one_utterance() -> None:
    """`converse` cuts a file into turns with no bound: a long turn stays one turn."""
    t = np.arange(30 * RATE) / RATE
    pcm = np.where((t % 2.0) < 1.7, 8000 * np.sin(2 * np.pi * 180 * t), 0.0).astype(np.int16)
    [(start, end)] = segment_utterances(pcm, RATE)
    assert start == 0 and end >= int(29.7 * RATE)


def test_silence_and_steady_noise_give_no_utterances() -> None:
    assert segment_utterances(np.zeros(RATE * 3, np.int16), RATE) == []
    noise = np.random.default_rng(1).normal(0, 3000, RATE * 5).astype(np.int16)  # -21 dBFS
    assert segment_utterances(noise, RATE) == []


def test_a_click_is_not_an_utterance() -> None:
    pcm = np.zeros(RATE * 2, np.int16)
    pcm[RATE : RATE + 480] = 20000  # 30 ms
    assert segment_utterances(pcm, RATE) == []


def test_streaming_vad_closes_utterance_after_the_pause() -> None:
    vad = EnergyVad(RATE, min_pause_ms=300.0)
    tone = np.round(8000 * np.sin(np.arange(RATE) * 2 * np.pi * 200 / RATE)).astype(np.int16)
    pcm = np.concatenate([np.zeros(RATE // 2, np.int16), tone, np.zeros(RATE, np.int16)])
    closed: list[tuple[int, int]] = []
    opened_at = None
    for i in range(0, pcm.size, 320):
        closed += vad.feed(pcm[i : i + 320])
        if vad.in_speech and opened_at is None:
            opened_at = i
    assert opened_at is not None and RATE // 2 <= opened_at <= RATE // 2 + 0.25 * RATE
    assert len(closed) == 1
    start, end = closed[0]
    assert abs(start - RATE // 2) <= 0.12 * RATE and abs(end - 3 * RATE // 2) <= 0.12 * RATE
    assert vad.flush() == []
