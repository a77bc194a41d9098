"""Convert basic-pitch's ONNX model (Apache-2.0) to mer_tag/weights/basic_pitch/ (safetensors + JSON).

basic-pitch's wheel declares TensorFlow on Python 3.11, so it is never installed: download the wheel alone,
read its `nmp.onnx` with the `onnx` package (a conversion-time tool, not a project dependency), and map
its constants onto `mer_tag.models.basic_pitch.BasicPitch`:

    pip download basic-pitch==0.4.0 --no-deps -d /tmp/bp && unzip -q /tmp/bp/basic_pitch-0.4.0-*.whl -d /tmp/bp/x
    pip install onnx
    python tools/convert_basic_pitch.py /tmp/bp/x
    pip install onnxruntime   # only for the reference below, never a project dependency
    python tools/convert_basic_pitch.py /tmp/bp/x --reference

`--reference` runs the original ONNX model with onnxruntime on the test clip (tests/media.py's
`vibrato_chord`) and writes every 4th frame of its three outputs to tests/data/basic_pitch_reference.npz,
which tests/test_basic_pitch.py holds the port to.

The constants are found by the graph's structure (which convolution feeds which), and every layer's
padding and stride is checked against the port's, so a different ONNX graph fails loudly here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ONNX_PATH = "basic_pitch/saved_models/icassp_2022/nmp.onnx"
REFERENCE = ROOT / "tests" / "data" / "basic_pitch_reference.npz"
REFERENCE_STEP = 4  # every 4th output frame is kept: 43 of 172, a 60 KB file
# Conv weight shape in the ONNX graph → (port's layer, expected pads [top, left, bottom, right], strides)
CONV_LAYERS = {
    (32, 8, 5, 5): ("onset_conv", [2, 1, 2, 1], [1, 3]),
    (8, 8, 3, 39): ("contour_conv", [1, 19, 1, 19], [1, 1]),
    (1, 8, 5, 5): ("contour_out", [2, 2, 2, 2], [1, 1]),
    (32, 1, 7, 7): ("note_conv", [3, 2, 3, 2], [1, 3]),
    (1, 32, 7, 3): ("note_out", [3, 1, 3, 1], [1, 1]),
    (1, 33, 3, 3): ("onset_out", [1, 1, 1, 1], [1, 1]),
}


def attribute(node, name: str):
    import onnx

    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return None


def extract(onnx_file: Path) -> dict[str, np.ndarray]:
    """The port's state dict, as numpy arrays, from the ONNX graph."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_file)).graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    feeds = {}  # tensor name → ops that read it
    for node in graph.node:
        for name in node.input:
            feeds.setdefault(name, []).append(node.op_type)
    state: dict[str, np.ndarray] = {}
    for node in graph.node:
        weight = consts.get(node.input[1]) if node.op_type in ("Conv", "Mul", "Add") and len(node.input) > 1 else None
        if weight is None:
            continue
        if node.op_type == "Conv" and weight.shape == (36, 1, 1, 256):
            # CQT kernels: nnAudio negates the imaginary part's convolution (its output feeds a Neg)
            key = "cqt_imag" if "Neg" in feeds.get(node.output[0], []) else "cqt_real"
            bias = consts[node.input[2]]
            if np.any(bias != 0):
                raise ValueError("the CQT convolution has a bias; the port has none")
            state[key] = weight[:, :, 0, :]  # [36, 1, 256]
        elif node.op_type == "Conv" and weight.shape == (1, 1, 1, 256):
            state["lowpass"] = weight[:, :, 0, :]
        elif node.op_type == "Conv" and weight.shape in CONV_LAYERS:
            layer, pads, strides = CONV_LAYERS[weight.shape]
            if attribute(node, "pads") != pads or attribute(node, "strides") != strides:
                raise ValueError(f"{layer}: pads {attribute(node, 'pads')} strides {attribute(node, 'strides')}")
            state[f"{layer}.weight"] = weight
            state[f"{layer}.bias"] = consts[node.input[2]]
        elif node.op_type == "Mul" and weight.shape == (309, 1, 1):
            state["cqt_scale"] = weight[:, 0, 0]
        elif node.op_type == "Mul" and "batch_normalization/" in node.input[1]:
            state["input_scale"] = weight.reshape(1)
        elif node.op_type == "Add" and "batch_normalization/" in node.input[1]:
            state["input_shift"] = weight.reshape(1)
    return state


def main(wheel_dir: str, out: str | None = None) -> None:
    import torch
    from safetensors.torch import save_file

    from mer_tag.models import basic_pitch

    wheel = Path(wheel_dir)
    onnx_file = wheel / ONNX_PATH
    state = extract(onnx_file)
    model = basic_pitch.BasicPitch()
    expected = set(model.state_dict())
    if set(state) != expected:
        raise ValueError(f"missing {sorted(expected - set(state))}, unexpected {sorted(set(state) - expected)}")
    model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()})
    folder = Path(out) if out else basic_pitch.WEIGHTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / basic_pitch.WEIGHTS_FILE))
    meta = {
        "source": "basic-pitch 0.4.0 (Spotify, Apache-2.0): " + ONNX_PATH,
        "onnx_sha256": hashlib.sha256(onnx_file.read_bytes()).hexdigest(),
        "sample_rate": basic_pitch.SAMPLE_RATE,
        "hop": basic_pitch.HOP,
        "window_samples": basic_pitch.WINDOW_SAMPLES,
        "window_frames": basic_pitch.WINDOW_FRAMES,
        "cqt_bins": basic_pitch.CQT_BINS,
        "contour_bins": basic_pitch.CONTOUR_BINS,
        "note_bins": basic_pitch.NOTE_BINS,
        "lowest_midi": basic_pitch.LOWEST_MIDI,
        "converted_by": "tools/convert_basic_pitch.py",
    }
    (folder / "basic_pitch.json").write_text(json.dumps(meta, indent=1) + "\n")
    info = next(wheel.glob("basic_pitch-*.dist-info"))
    for name in ("LICENSE", "NOTICE"):
        shutil.copyfile(info / name, folder / name)
    print(f"{len(state)} tensors → {folder}")


def reference(wheel_dir: str) -> None:
    """The original ONNX model's outputs on the test clip (first window), every REFERENCE_STEP-th frame."""
    import onnxruntime

    sys.path.insert(0, str(ROOT / "tests"))
    from media import vibrato_chord
    from mer_tag.models.basic_pitch import windows

    session = onnxruntime.InferenceSession(str(Path(wheel_dir) / ONNX_PATH), providers=["CPUExecutionProvider"])
    batch = windows(vibrato_chord())[:1, :, None]
    outputs = session.run(None, {session.get_inputs()[0].name: batch})
    by_width = {}
    for meta, value in zip(session.get_outputs(), outputs, strict=True):
        by_width[meta.name] = value[0, ::REFERENCE_STEP]
    # ONNX output names: :0 contour (264 bins), :1 note, :2 onset (see the graph's last layers)
    arrays = {
        "contour": by_width["StatefulPartitionedCall:0"],
        "note": by_width["StatefulPartitionedCall:1"],
        "onset": by_width["StatefulPartitionedCall:2"],
    }
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE, step=np.array(REFERENCE_STEP), **arrays)
    print(f"reference → {REFERENCE}")


if __name__ == "__main__":
    if "--reference" in sys.argv:
        reference(sys.argv[1])
    else:
        main(*sys.argv[1:])
