"""One-off: convert musicnn's pretrained MSD_musicnn TF1 checkpoint to torch-layout safetensors.

Source: PyPI package ``musicnn`` 0.1.0 (ISC licence, Jordi Pons / MTG-UPF), checkpoint
``musicnn/MSD_musicnn/`` (TF 1.12 checkpoint; the variable prefix is the empty string, so the files
are ``.index`` / ``.data-00000-of-00001`` / ``.meta`` inside that folder).

How to run (TensorFlow lives in a throw-away venv, never in the project venv)::

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.15.1 safetensors   # TF 2.15 pulls numpy 1.26
    mkdir -p /tmp/mnn && /tmp/tfvenv/bin/pip download musicnn==0.1.0 --no-deps -d /tmp/mnn
    /tmp/tfvenv/bin/python tools/convert_musicnn.py \
        --wheel /tmp/mnn/musicnn-0.1.0-py3-none-any.whl \
        --out mer_tag/weights/musicnn/msd_musicnn.safetensors

Optional, to check a port numerically against the *original training graph* (the ``.meta`` graph
def, frozen with the checkpoint values, run with ``is_training=False``)::

    /tmp/tfvenv/bin/python tools/convert_musicnn.py --wheel ... --reference IN.npy OUT.npz

IN.npy holds float32 log-mel patches [n, 187, 96]; OUT.npz gets ``tags``, ``logits``,
``penultimate``, ``mean_pool``, ``max_pool`` from TensorFlow. (Rebuilding the graph from
musicnn/models.py under TF2 is not needed and is not done: restoring the original graph avoids
any doubt about layer order, ``training`` flags or variable names.)

Layout of the output (torch conventions, float32):
  * conv kernels TF [kh, kw, in, out] -> [out, in, kh, kw] (kh = time, kw = mel frequency)
  * dense kernels TF [in, out] -> [out, in]
  * batch norm gamma/beta/moving_mean/moving_variance -> weight/bias/running_mean/running_var
Tensor names are the state_dict keys of ``mer_tag.models.musicnn.Musicnn``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np

CKPT_DIR = "musicnn/MSD_musicnn/"

# TF variable scope -> torch module name. Order is graph-construction order in musicnn/models.py.
CONVS = {
    "conv2d": "timbral_74",  # [7, 38] timbral (0.4 * 96 mels), 204 filters
    "conv2d_1": "timbral_77",  # [7, 67] timbral (0.7 * 96 mels), 204 filters
    "conv2d_2": "temporal_128",  # [128, 1] temporal, 51 filters
    "conv2d_3": "temporal_64",
    "conv2d_4": "temporal_32",
    "conv2d_5": "midend1",  # [7, 561] over the concatenated front-end, 64 filters
    "conv2d_6": "midend2",  # [7, 64]
    "conv2d_7": "midend3",
}
BNS = {
    "batch_normalization": "bn_input",
    "batch_normalization_1": "bn_timbral_74",
    "batch_normalization_2": "bn_timbral_77",
    "batch_normalization_3": "bn_temporal_128",
    "batch_normalization_4": "bn_temporal_64",
    "batch_normalization_5": "bn_temporal_32",
    "batch_normalization_6": "bn_midend1",
    "batch_normalization_7": "bn_midend2",
    "batch_normalization_8": "bn_midend3",
    "batch_normalization_9": "bn_pool",
    "batch_normalization_10": "bn_dense",
}
DENSES = {"dense": "dense", "dense_1": "output"}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def extract_checkpoint(wheel: Path, dest: Path) -> str:
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith(CKPT_DIR):
                z.extract(name, dest)
    return f"{dest / CKPT_DIR}/"  # checkpoint prefix "<dir>/": the basename is empty


def convert(prefix: str) -> dict[str, np.ndarray]:
    from tensorflow.python.training import py_checkpoint_reader

    reader = py_checkpoint_reader.NewCheckpointReader(prefix)
    shapes = reader.get_variable_to_shape_map()
    out: dict[str, np.ndarray] = {}
    used = set()

    def get(name: str) -> np.ndarray:
        used.add(name)
        return np.asarray(reader.get_tensor(name), dtype=np.float32)

    for tf_name, name in CONVS.items():
        out[f"{name}.weight"] = get(f"{tf_name}/kernel").transpose(3, 2, 0, 1)
        out[f"{name}.bias"] = get(f"{tf_name}/bias")
    for tf_name, name in BNS.items():
        out[f"{name}.weight"] = get(f"{tf_name}/gamma")
        out[f"{name}.bias"] = get(f"{tf_name}/beta")
        out[f"{name}.running_mean"] = get(f"{tf_name}/moving_mean")
        out[f"{name}.running_var"] = get(f"{tf_name}/moving_variance")
    for tf_name, name in DENSES.items():
        out[f"{name}.weight"] = get(f"{tf_name}/kernel").T
        out[f"{name}.bias"] = get(f"{tf_name}/bias")

    # Everything left over must be optimiser state, never a model weight we forgot.
    leftover = [k for k in shapes if k not in used and "Adam" not in k and k not in ("beta1_power", "beta2_power")]
    if leftover:
        raise SystemExit(f"unmapped checkpoint variables: {leftover}")
    for k, v in out.items():
        if not np.isfinite(v).all():
            raise SystemExit(f"non-finite values in {k}")
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """safetensors serialisation with a canonical (sorted) JSON header, so reruns give identical bytes.

    safetensors' own writer emits the metadata in hash-map order, which changes between runs.
    """
    from safetensors.numpy import save

    raw = save(tensors, metadata=metadata)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # data must start 8-byte aligned
    return len(text).to_bytes(8, "little") + text + raw[8 + n :]


def reference(prefix: str, patches: np.ndarray) -> dict[str, np.ndarray]:
    """Run the original TF1 training graph (from .meta) frozen with the checkpoint, is_training=False."""
    import tensorflow as tf
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow.python.training import py_checkpoint_reader

    tf.compat.v1.disable_eager_execution()
    meta = meta_graph_pb2.MetaGraphDef()
    meta.ParseFromString(Path(prefix + ".meta").read_bytes())
    fetch = {
        "tags": "model/Sigmoid",
        "logits": "model/dense_1/BiasAdd",
        "penultimate": "model/batch_normalization_10/batchnorm/add_1",
        "max_pool": "model/Max",
        "mean_pool": "model/moments/Squeeze",
    }
    # Keep only the inference sub-graph (the gradient ops do not import under TF2), and freeze
    # variables into constants read from the checkpoint.
    sub = tf.compat.v1.graph_util.extract_sub_graph(meta.graph_def, list(fetch.values()))
    reader = py_checkpoint_reader.NewCheckpointReader(prefix)
    frozen = tf.compat.v1.GraphDef()
    for node in sub.node:
        if node.op in ("VariableV2", "Variable"):
            const = tf.compat.v1.NodeDef(name=node.name, op="Const")
            value = reader.get_tensor(node.name)
            const.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
            const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
            frozen.node.append(const)
        else:
            n = frozen.node.add()
            n.CopyFrom(node)
            if "_output_shapes" in n.attr:
                del n.attr["_output_shapes"]
            n.device = ""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(frozen, name="")
    x = graph.get_tensor_by_name("model/Placeholder:0")  # [None, 187, 96] float32
    is_training = graph.get_tensor_by_name("model/Placeholder_2:0")  # bool
    assert x.dtype == tf.float32 and is_training.dtype == tf.bool
    tensors = {k: graph.get_tensor_by_name(v + ":0") for k, v in fetch.items()}
    with tf.compat.v1.Session(graph=graph) as sess:
        res = sess.run(tensors, feed_dict={x: patches.astype(np.float32), is_training: False})
    res["max_pool"] = res["max_pool"].reshape(len(patches), -1)
    res["mean_pool"] = res["mean_pool"].reshape(len(patches), -1)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, default=Path("/tmp/mnn/musicnn-0.1.0-py3-none-any.whl"))
    ap.add_argument("--out", type=Path, default=Path("mer_tag/weights/musicnn/msd_musicnn.safetensors"))
    ap.add_argument(
        "--reference",
        nargs=2,
        metavar=("IN_NPY", "OUT_NPZ"),
        type=Path,
        help="run the original TF graph on IN_NPY patches instead of converting",
    )
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        prefix = extract_checkpoint(args.wheel, Path(tmp))
        if args.reference:
            inp, outp = args.reference
            res = reference(prefix, np.load(inp))
            np.savez(outp, **res)
            print(f"wrote {outp}: " + ", ".join(f"{k}{list(v.shape)}" for k, v in res.items()))
            return 0
        tensors = convert(prefix)

    meta = {
        "source": "PyPI musicnn==0.1.0, musicnn/MSD_musicnn (TF 1.12 checkpoint)",
        "wheel_sha256": sha256(args.wheel),
        "licence": "ISC, Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019",
        "batchnorm_eps": "0.001",
        "input": "log10(10000 * mel + 1), 16 kHz, n_fft 512, hop 256, 96 slaney mels, [T=187, 96]",
        "layout": "conv [out, in, time, freq]; dense [out, in]",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(safetensors_bytes(tensors, meta))
    args.out.chmod(0o644)
    n = sum(v.size for v in tensors.values())
    print(f"wrote {args.out}: {len(tensors)} tensors, {n} values, sha256 {sha256(args.out)}")
    print(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
