"""For tests/test_workers.py: a `prepare` whose worker is killed while it sends its (huge) result, leaving half a
message in the executor's result pipe. Importable by name in the spawned workers (PYTHONPATH has tests/)."""

import os
import signal
import threading
import time

import numpy as np

TEAR_ON = "torn.wav"  # the track whose worker dies mid-send
PAYLOAD_BYTES = 256 * 1024 * 1024  # pickling and piping this takes far longer than the kill's delay


def prepare_tearing(track, audio_config, midi_config):
    from mer_tag.prepare import prepare

    item = prepare(track, audio_config, midi_config)
    if track.path.name == TEAR_ON:
        item.audio = np.ones(PAYLOAD_BYTES, dtype=np.uint8)  # ones: never a valid message once cut
        threading.Thread(target=_die_soon, daemon=True).start()
    return item


def _die_soon() -> None:
    time.sleep(0.15)  # the result is being sent by now
    os.kill(os.getpid(), signal.SIGKILL)
