#!/usr/bin/env python3
"""Convert published representation-editor checkpoints into mambakit's editors format.

    python3 scripts/convert-editors.py pyreft IN_DIR OUT_DIR [--positions f7+l7] [--share-weights auto|yes|no]
    python3 scripts/convert-editors.py mrt IN_FILE_OR_DIR OUT_DIR [--positions f6+l6] [--sites block,encoder,projector]

common options: --hidden H (check the width), --num-layers N (record it), --act A (override the activation),
--bf16 (write BF16 instead of F32), --decode (also edit decoded tokens).

OUT_DIR receives editors.json and editors.safetensors (docs/editors-format.md). Needs Python 3 and numpy;
torch is optional: when it imports, torch.load(weights_only=True) reads .bin files, otherwise (or with
MAMBAKIT_NO_TORCH=1) the zip archive torch.save writes is read here by a restricted unpickler that allows
only the globals a state dict of tensors needs. Errors: one line on stderr naming the file, exit status 1.
"""

import argparse
import collections
import io
import json
import os
import pickle
import re
import struct
import sys
import zipfile

import numpy as np

ORTHONORMAL_TOLERANCE = 1e-3  # |R Rᵀ − I|max accepted by the editors format
ACTIVATIONS = ("identity", "relu", "gelu", "silu", "tanh")
# transformers' ACT2FN names for the same functions ("gelu" there is the exact erf GELU, as in mambakit)
ACT_ALIASES = {"linear": "identity", "none": "identity", "swish": "silu"}


class ConvertError(Exception):
    """A problem with an input or an option: printed as one line, exit status 1."""


def fail(where, msg):
    raise ConvertError(f"{where}: {msg}")


def warn(msg):
    print(f"convert-editors: note: {msg}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------------------
# Reading torch.save files without torch.
#
# torch.save (torch >= 1.6) writes a zip archive whose entries sit in one folder (the file name's stem when
# saving to a path, "archive" when saving to a buffer): data.pkl (the object, pickle protocol 2), byteorder,
# data/<key> (each storage's raw bytes), version, and in newer releases .format_version, .storage_alignment
# and .data/serialization_id. In data.pkl a storage is a persistent id
# ('storage', <torch.XStorage class>, key, location, numel) and a tensor is
# torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]).
# (Followed: pytorch/pytorch torch/serialization.py _save / _load and caffe2/serialize/inline_container.cc.)
# ---------------------------------------------------------------------------------------------------------

# storage class -> (numpy dtype of one element, or "bf16"; bytes per element)
_STORAGE_TYPES = {
    "FloatStorage": ("<f4", 4),
    "DoubleStorage": ("<f8", 8),
    "HalfStorage": ("<f2", 2),
    "BFloat16Storage": ("bf16", 2),
    "LongStorage": ("<i8", 8),
    "IntStorage": ("<i4", 4),
    "ShortStorage": ("<i2", 2),
    "CharStorage": ("<i1", 1),
    "ByteStorage": ("<u1", 1),
    "BoolStorage": ("<u1", 1),
}


def bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """Round-to-nearest-even f32 -> bf16 bits (the native conversion's rule; NaN stays a quiet NaN)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    r[np.isnan(x)] = 0x7FC0
    return r


class _StorageType:
    def __init__(self, name):
        self.name = name


class _Storage:
    def __init__(self, array):
        self.array = array  # 1-D, decoded (bf16 -> f32)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor's storage is not a storage record")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError(f"bad tensor geometry: size {size}, stride {stride}")
    arr = storage.array
    numel = int(np.prod(size)) if size else 1
    if numel == 0:
        return _TensorBox(np.zeros(size, dtype=arr.dtype))
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if storage_offset < 0 or last >= arr.shape[0]:
        raise pickle.UnpicklingError(f"tensor [{', '.join(map(str, size))}] at offset {storage_offset} runs past its storage ({arr.shape[0]} elements)")
    view = np.lib.stride_tricks.as_strided(arr[storage_offset:], shape=size, strides=[s * arr.itemsize for s in stride])
    return _TensorBox(np.array(view))


class _TensorBox:
    """A rebuilt tensor while unpickling: no __dict__ and no __setstate__, so a BUILD opcode aimed at it fails
    (an ndarray would accept ndarray.__setstate__); unwrapped after load."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, _TensorBox):
        raise pickle.UnpicklingError("a parameter's data is not a tensor")
    return data


def _unbox(obj):
    if isinstance(obj, _TensorBox):
        return obj.array
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _unbox(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unbox(v) for v in obj)
    return obj


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a state dict of dense CPU tensors needs; anything else is refused."""

    def __init__(self, f, zf, prefix, where):
        super().__init__(f)
        self._zf, self._prefix, self._where, self._storages = zf, prefix, where, {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_TYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(
            f"refused: the pickle references {module}.{name}, which is not allowed (only collections.OrderedDict, "
            "torch._utils._rebuild_tensor_v2/_rebuild_parameter and torch storage types are; a pickle can run code)")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage" or not isinstance(pid[1], _StorageType):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, stype, key, _location, numel = pid
        key = str(key)
        if key in self._storages:
            return self._storages[key]
        if not re.fullmatch(r"[0-9A-Za-z_]+", key):
            raise pickle.UnpicklingError(f"bad storage key {key!r}")
        np_dtype, size = _STORAGE_TYPES[stype.name]
        try:
            raw = self._zf.read(f"{self._prefix}data/{key}")
        except KeyError:
            raise pickle.UnpicklingError(f"storage data/{key} is missing from the archive") from None
        if len(raw) != int(numel) * size:
            raise pickle.UnpicklingError(f"storage data/{key} holds {len(raw)} bytes, {stype.name} of {numel} elements needs {int(numel) * size}")
        if np_dtype == "bf16":
            array = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2"))
        else:
            array = np.frombuffer(raw, dtype=np_dtype).astype(np.dtype(np_dtype).newbyteorder("="))
        st = _Storage(array)
        self._storages[key] = st
        return st


def _read_torch_zip(path):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            fail(path, "not a torch.save archive (no <folder>/data.pkl entry)")
        prefix = pkl[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in names and zf.read(f"{prefix}byteorder").strip() not in (b"little", b""):
            fail(path, "big-endian torch.save archives are not supported")
        try:
            return _unbox(_RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), zf, prefix, path).load())
        except ConvertError:
            raise
        except Exception as e:  # a hostile or corrupt pickle: whatever it raised, one line
            fail(path, str(e) if str(e).startswith("refused") else f"cannot read the pickle: {type(e).__name__}: {e}")


def _torch_module():
    if os.environ.get("MAMBAKIT_NO_TORCH"):
        return None
    try:
        import torch  # noqa: PLC0415 (optional dependency)

        return torch
    except Exception:
        return None


def _from_torch(torch, obj):
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        return t.numpy().copy()
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _from_torch(torch, v)) for k, v in obj.items())
    return obj


def read_safetensors(path):
    """A .safetensors file as an OrderedDict name -> array (BF16/F16 decoded to f32)."""
    dtypes = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "bf16", "I64": "<i8", "I32": "<i4"}
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            fail(path, "too short for a safetensors file")
        (n,) = struct.unpack("<Q", head)
        size = os.fstat(f.fileno()).st_size
        if n > size - 8 or n > 100_000_000:
            fail(path, f"header length {n} does not fit the file ({size} bytes)")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            fail(path, f"header is not valid JSON: {e}")
        data = f.read()
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(e, dict) or e.get("dtype") not in dtypes:
            fail(path, f"tensor '{name}': unsupported entry (dtype {e.get('dtype') if isinstance(e, dict) else e!r})")
        shape = [int(s) for s in e["shape"]]
        begin, end = (int(x) for x in e["data_offsets"])
        dt = dtypes[e["dtype"]]
        width = 2 if dt == "bf16" else np.dtype(dt).itemsize
        if end > len(data) or end - begin != int(np.prod(shape)) * width:
            fail(path, f"tensor '{name}': data_offsets [{begin}, {end}] do not match {e['dtype']} {shape}")
        raw = data[begin:end]
        a = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2")) if dt == "bf16" else np.frombuffer(raw, dtype=dt).astype(np.dtype(dt).newbyteorder("="))
        out[name] = a.reshape(shape)
    return out


def load_state(path):
    """A state dict (possibly nested dicts) of numpy arrays from a torch.save file or a .safetensors file."""
    if not os.path.isfile(path):
        fail(path, "not found")
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    torch = _torch_module()
    if torch is not None:
        try:
            kwargs = {"map_location": "cpu", "weights_only": True}
            return _from_torch(torch, torch.load(path, **kwargs))
        except Exception as e:  # torch's own refusal of a global, a corrupt file, ...
            text = str(e)
            m = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)", text)
            if m:
                fail(path, f"refused: the pickle references {m.group(1)}, which is not allowed (torch.load weights_only; a pickle can run code)")
            lines = [l for l in text.splitlines() if l.strip() and "weights_only" not in l]
            fail(path, f"torch.load failed: {lines[0] if lines else type(e).__name__}")
    if zipfile.is_zipfile(path):
        return _read_torch_zip(path)
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic[:1] == b"\x80":
        fail(path, "legacy (pre-zip) torch.save format: install torch to read it, or re-save it with torch >= 1.6")
    fail(path, "neither a torch.save zip archive nor a .safetensors file")


# ---------------------------------------------------------------------------------------------------------
# Orthonormalization
# ---------------------------------------------------------------------------------------------------------


def mrt_orthogonal_weight(w):
    """MRT's LowRankRotateLayer.get_orthogonal_weight (comeandcode/MRT
    MRT/model/language_model/modeling_llamaMRT.py and MRT/model/multimodal_encoder/modeling_clipMRT.py):
    Q, R = qr(w) (reduced; w is the raw [d, r] weight), sign = sign(diag(R)) with 0 -> +1, return Q * sign
    (each column of Q times its sign). MRT does this in float32 on every forward; here it runs in float64
    and rounds once, so the result is the f32 nearest the exact sign-fixed Q (unique for a full-rank w)."""
    w = np.asarray(w, dtype=np.float64)
    q, r = np.linalg.qr(w, mode="reduced")
    sign = np.sign(np.diag(r))
    sign[sign == 0] = 1.0
    return q * sign[None, :]


def torch_orthogonal_householder(original, base):
    """The weight torch.nn.utils.parametrizations.orthogonal gives a tall [n, k] matrix (pyreft's rotate
    layers use the default: the "householder" map with use_trivialization=True), from the two tensors its
    state dict stores: parametrizations.weight.original (X, [n, k]) and parametrizations.weight.0.base
    (B, [n, n]). Followed: pytorch/pytorch torch/nn/utils/parametrizations.py _Orthogonal.forward:
        A = X.tril(-1); tau = 2 / (1 + sum(A*A, dim=-2)); Q = householder_product(A, tau)
        Q = Q * X.diagonal().int()   (truncated toward zero, as the .int() cast does); return B @ Q
    householder_product (LAPACK orgqr): Q = H_0 … H_{k-1} applied to the first k columns of I, with
    H_j = I − tau_j v_j v_jᵀ, v_j = e_j + A[:, j] (unit diagonal implied, zeros above)."""
    x = np.asarray(original, dtype=np.float64)
    n, k = x.shape
    a = np.tril(x, -1)
    tau = 2.0 / (1.0 + (a * a).sum(axis=0))
    q = np.eye(n, k)
    for j in range(k - 1, -1, -1):
        v = a[:, j].copy()
        v[j] = 1.0
        q -= tau[j] * np.outer(v, v @ q)
    q = q * np.trunc(np.diag(x))[None, :]
    if base is not None:
        q = np.asarray(base, dtype=np.float64) @ q
    return q


def row_deviation(r):
    r = np.asarray(r, dtype=np.float64)
    return float(np.abs(r @ r.T - np.eye(r.shape[0])).max()) if r.size else 0.0


# ---------------------------------------------------------------------------------------------------------
# Positions
# ---------------------------------------------------------------------------------------------------------


def parse_positions(text, where="--positions"):
    """pyreft's position strings (pyreft/dataset.py parse_positions): "f7+l7" (first 7 and last 7 prompt
    tokens), "f7", "l7"; "all" edits every position. Returns (first_n, last_n), or None for all."""
    if text is None:
        return None
    t = text.strip()
    if t == "all":
        return None
    m = re.fullmatch(r"(?:f(\d+))?(?:\+?l(\d+))?", t)
    if not t or not m or (m.group(1) is None and m.group(2) is None) or ("+" in t and (m.group(1) is None or m.group(2) is None)):
        fail(where, f"'{text}' is not one of fN+lM, fN, lM, all")
    first, last = int(m.group(1) or 0), int(m.group(2) or 0)
    if first == 0 and last == 0:
        fail(where, f"'{text}' selects no positions")
    return first, last


# ---------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------


class EditorOut:
    def __init__(self, name, site, layer, positions, formula, activation, R, W, b, src):
        self.name, self.site, self.layer, self.positions = name, site, layer, positions
        self.formula, self.activation = formula, activation
        self.R, self.W, self.b, self.src = R, W, b, src

    @property
    def rank(self):
        return self.R.shape[0]

    @property
    def hidden(self):
        return self.R.shape[1]


def check_editor(e):
    r, d = e.R.shape if e.R.ndim == 2 else (None, None)
    if r is None or r < 1 or e.W.shape != (r, d) or e.b.shape != (r,):
        fail(e.src, f"editor '{e.name}': shapes R {list(e.R.shape)}, W {list(e.W.shape)}, b {list(e.b.shape)} are not [r, d], [r, d], [r]")
    if r > d:
        fail(e.src, f"editor '{e.name}': rank {r} exceeds the width {d}")
    for label, t in (("R", e.R), ("W", e.W), ("b", e.b)):
        if not np.all(np.isfinite(t)):
            fail(e.src, f"editor '{e.name}': {label} holds NaN or infinite values")
    dev = row_deviation(e.R.astype(np.float32))  # in the f32 terms the file stores
    if dev > ORTHONORMAL_TOLERANCE:
        fail(e.src, f"editor '{e.name}': R's rows are not orthonormal (max |R Rᵀ − I| = {dev:.2e} > {ORTHONORMAL_TOLERANCE})")


def write_outputs(out_dir, source, editors, hidden, num_layers, bf16, decode):
    names = set()
    tensors = []
    specs = []
    for e in editors:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", e.name) or e.name in names:
            raise AssertionError(f"editor name {e.name!r}")
        names.add(e.name)
        check_editor(e)
        R = e.R.astype(np.float32)
        if bf16:
            rb = f32_to_bf16_bits(R)
            dev = row_deviation(bf16_bits_to_f32(rb).reshape(R.shape))
            if dev > ORTHONORMAL_TOLERANCE:
                fail(e.src, f"editor '{e.name}': R rounded to BF16 is no longer orthonormal (max |R Rᵀ − I| = {dev:.2e}); write F32 (drop --bf16)")
        for suffix, t in (("R", R), ("W", e.W), ("b", e.b)):
            t32 = np.ascontiguousarray(t, dtype=np.float32)
            if bf16:
                tensors.append((f"{e.name}.{suffix}", "BF16", list(t32.shape), f32_to_bf16_bits(t32).astype("<u2").tobytes()))
            else:
                tensors.append((f"{e.name}.{suffix}", "F32", list(t32.shape), t32.astype("<f4").tobytes()))
        spec = collections.OrderedDict(name=e.name, site=e.site)
        if e.site != "projector":
            spec["layer"] = int(e.layer)
        spec["positions"] = e.positions
        spec["rank"] = e.rank
        spec["formula"] = e.formula
        spec["activation"] = e.activation
        spec["decode"] = bool(decode)
        specs.append(spec)
    model = collections.OrderedDict(hidden_size=int(hidden))
    vision = {int(e.R.shape[1]) for e in editors if e.site == "encoder"}
    if len(vision) > 1:
        fail(editors[0].src, f"shape mismatch: the vision-encoder editors have different widths {sorted(vision)}")
    if vision:
        model["vision_hidden_size"] = vision.pop()  # encoder editors are as wide as the vision stream
    if num_layers is not None:
        model["num_layers"] = int(num_layers)
    doc = collections.OrderedDict(format="mambakit-editors", version=1, model=model, source=source, editors=specs)

    header = collections.OrderedDict()
    header["__metadata__"] = {"format": "pt", "source": source, "converter": "mambakit scripts/convert-editors.py"}
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((-len(hb)) % 8)  # the data section starts 8-byte aligned
    os.makedirs(out_dir, exist_ok=True)
    st_path = os.path.join(out_dir, "editors.safetensors")
    js_path = os.path.join(out_dir, "editors.json")
    with open(st_path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, _, _, data in tensors:
            f.write(data)
    with open(js_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(st_path + ".tmp", st_path)
    os.replace(js_path + ".tmp", js_path)


def resolve_activation(value, default="identity"):
    if value is None:
        return default
    v = ACT_ALIASES.get(value.lower(), value.lower())
    if v not in ACTIVATIONS:
        fail("--act", f"'{value}' is not one of {', '.join(ACTIVATIONS)} (or transformers' linear/swish)")
    return v


def f64(a):
    return np.asarray(a, dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------
# pyreft (a directory written by pyreft's ReftModel.save = pyvene's IntervenableModel.save)
#
# Followed: stanfordnlp/pyvene pyvene/models/intervenable_base.py (IntervenableModel.save / load,
# _get_representation_key), pyvene/models/configuration_intervenable_model.py (RepresentationConfig),
# stanfordnlp/pyreft pyreft/interventions.py (the interventions and LoreftIntervention.state_dict),
# pyreft/dataset.py (parse_positions, get_intervention_locations) and examples/loreft/train.py (how
# "f+l" positions double the layer list when weights are not shared).
#
# config.json: "representations" (each RepresentationConfig as a JSON list, fields in the order below),
# "intervention_types" (str(type(intervention)), e.g. "<class 'pyreft.interventions.LoreftIntervention'>"),
# "sorted_keys", "intervention_dimensions" (the width each intervention was made for), ...
# Each trainable intervention's state dict is torch.save'd as intkey_<key>.bin, where <key> is
# layer_<l>_comp_<component>_unit_<unit>_nunit_<n>#<i> (i counts repeats of the same proposal; pyvene
# before February 2025 wrote layer.<l>.comp.<component>.unit.<unit>.nunit.<n>#<i>).
# ---------------------------------------------------------------------------------------------------------

REPR_FIELDS = ("layer", "component", "unit", "max_number_of_units", "low_rank_dimension", "intervention_type",
               "intervention", "subspace_partition", "group_key", "intervention_link_key", "moe_key",
               "source_representation", "hidden_source_representation", "latent_dim")
REPR_DEFAULTS = {"layer": 0, "component": "block_output", "unit": "pos", "max_number_of_units": 1}


def _representation(v, where):
    if isinstance(v, dict):
        rep = dict(v)
    elif isinstance(v, list):
        if len(v) > len(REPR_FIELDS):
            fail(where, f"a representation has {len(v)} fields, more than pyvene's {len(REPR_FIELDS)}")
        rep = dict(zip(REPR_FIELDS, v))
    else:
        fail(where, f"a representation must be a list or an object, got {type(v).__name__}")
    for k, d in REPR_DEFAULTS.items():
        if rep.get(k) is None:
            rep[k] = d
    return rep


def _key_candidates(rep, counter):
    l, c, u, n = rep["layer"], rep["component"], str(rep["unit"]), rep["max_number_of_units"]
    if "." in c:
        new, old = f"comp_{c.replace('.', '_')}_unit_{u.replace('.', '_')}_nunit_{n}", f"comp.{c}.unit.{u}.nunit.{n}"
    else:
        new, old = f"layer_{l}_comp_{c}_unit_{u.replace('.', '_')}_nunit_{n}", f"layer.{l}.comp.{c}.unit.{u}.nunit.{n}"
    out = []
    for proposal in (new, old):
        i = counter.get(proposal, 0)
        counter[proposal] = i + 1
        out.append(f"{proposal}#{i}")
    return out


_BLOCK_PATH = re.compile(r"(?:^|\.)layers\[(\d+)\]\.output$")


def _block_layer(rep, where):
    c = rep["component"]
    if c == "block_output":
        layer = rep["layer"]
        if not isinstance(layer, int) or layer < 0:
            fail(where, f"layer {layer!r} is not a block index")
        return layer
    m = _BLOCK_PATH.search(c) if isinstance(c, str) else None
    if m:  # the module-path form examples/loreft/train.py uses with LoRA: "...layers[<l>].output"
        return int(m.group(1))
    fail(where, f"component '{c}' is not a block output: mambakit editors edit block outputs only "
                "(pyvene's block_output, or a module path ending in layers[N].output)")


def _get(sd, key, where, ndim=None):
    if key not in sd:
        fail(where, f"state dict has no '{key}' (keys: {', '.join(list(sd)[:8])})")
    a = sd[key]
    if not isinstance(a, np.ndarray):
        fail(where, f"'{key}' is not a tensor")
    if ndim is not None and a.ndim != ndim:
        fail(where, f"'{key}' has shape {list(a.shape)}, expected {ndim} dimensions")
    return a


def _pyreft_rotation(sd, where):
    """The [d, r] rotate-layer weight as the intervention applies it (x @ weight)."""
    if "rotate_layer" in sd:  # LoreftIntervention.state_dict stores rotate_layer.weight.data under this name
        return f64(_get(sd, "rotate_layer", where, 2))
    if "rotate_layer.parametrizations.weight.original" in sd:  # the default nn.Module state dict
        x = _get(sd, "rotate_layer.parametrizations.weight.original", where, 2)
        base = sd.get("rotate_layer.parametrizations.weight.0.base")
        if base is not None and (base.ndim != 2 or base.shape != (x.shape[0], x.shape[0])):
            fail(where, f"rotate_layer base has shape {list(base.shape)}, expected [{x.shape[0]}, {x.shape[0]}]")
        if x.shape[0] < x.shape[1]:
            fail(where, f"rotate_layer original has shape {list(x.shape)}; a [d, r] weight with d >= r is expected")
        return torch_orthogonal_householder(x, base)
    if "rotate_layer.weight" in sd:
        return f64(_get(sd, "rotate_layer.weight", where, 2))
    fail(where, f"state dict has no rotate layer (keys: {', '.join(list(sd)[:8])})")


def _pyreft_linear(sd, where):
    for wk, bk in (("weight", "bias"), ("learned_source.weight", "learned_source.bias")):
        if wk in sd:
            return f64(_get(sd, wk, where, 2)), f64(_get(sd, bk, where, 1))
    fail(where, f"state dict has no learned_source weight/bias (keys: {', '.join(list(sd)[:8])})")


PYREFT_REFUSED = {
    "NoreftIntervention": "its projection (proj_layer) is an unconstrained linear map, not orthonormal rows, so it has no mambakit R",
    "NodireftIntervention": "its projection (proj_layer) is an unconstrained linear map, not orthonormal rows, so it has no mambakit R",
}


def _pyreft_editor_weights(tname, sd, where, act):
    """(formula, activation, R [r, d], W [r, d], b [r]) for one pyreft intervention, or a refusal."""
    if tname == "LoreftIntervention":
        # LoReFT(h) = h + Rᵀ(act(Wh + b) − Rh); forward: base + (act(learned_source(base)) − base @ w) @ wᵀ
        w = _pyreft_rotation(sd, where)
        W, b = _pyreft_linear(sd, where)
        return "pyreft", act, w.T, W, b
    if tname == "ConsreftIntervention":
        # ConsReFT(h) = h + Rᵀ(b − Rh): the pyreft formula with W = 0 and the identity
        w = _pyreft_rotation(sd, where)
        b = f64(_get(sd, "learned_source", where, 1))
        return "pyreft", "identity", w.T, np.zeros_like(w.T), b
    if tname == "LobireftIntervention":
        # LobiReFT(h) = h + Rᵀb: the pyreft formula with W = R and the identity (Rh + b − Rh = b)
        w = _pyreft_rotation(sd, where)
        b = f64(_get(sd, "learned_source", where, 1))
        return "pyreft", "identity", w.T, w.T.copy(), b
    if tname == "DireftIntervention":
        # DiReFT(h) = h + Rᵀ act(Wh + b): MRT's formula h + Rᵀ act(W'h + b − Rh) with W' = W + R
        w = _pyreft_rotation(sd, where)
        W, b = _pyreft_linear(sd, where)
        if W.shape != w.T.shape:
            fail(where, f"learned_source.weight {list(W.shape)} does not match the rotate layer's [r, d] = {list(w.T.shape)}")
        return "mrt", act, w.T, W + w.T, b
    if tname in PYREFT_REFUSED:
        fail(where, f"{tname} cannot be converted: {PYREFT_REFUSED[tname]}")
    fail(where, f"intervention type {tname} is not supported (LoreftIntervention, ConsreftIntervention, "
                "LobireftIntervention and DireftIntervention are)")


def convert_pyreft(args):
    in_dir = args.input
    if not os.path.isdir(in_dir):
        fail(in_dir, "not found (a directory saved by pyreft's ReftModel.save is expected)")
    cfg_path = os.path.join(in_dir, "config.json")
    if not os.path.isfile(cfg_path):
        fail(cfg_path, "not found (pyvene writes config.json next to the intkey_*.bin files)")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        fail(cfg_path, f"not valid JSON: {e}")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("representations"), list) or not cfg["representations"]:
        fail(cfg_path, "no 'representations' list: not a pyvene intervention config")
    if os.path.exists(os.path.join(in_dir, "pytorch_model.bin")):
        fail(os.path.join(in_dir, "pytorch_model.bin"), "the save includes trained model weights (e.g. LoRA) that the "
             "interventions depend on; mambakit editors cannot carry them, so this save is not converted")
    reps = [_representation(v, cfg_path) for v in cfg["representations"]]
    types = cfg.get("intervention_types")
    if isinstance(types, str):
        types = [types] * len(reps)
    if not isinstance(types, list) or len(types) != len(reps):
        fail(cfg_path, f"intervention_types must list one type per representation ({len(reps)})")
    dims = cfg.get("intervention_dimensions")
    sorted_keys = cfg.get("sorted_keys") if isinstance(cfg.get("sorted_keys"), list) else None

    counter = {}
    items = []  # (location index, layer, rep, type name, file, config index)
    for i, rep in enumerate(reps):
        where = f"{cfg_path}: representations[{i}]"
        layer = _block_layer(rep, where)
        if str(rep["unit"]) != "pos" or rep["max_number_of_units"] != 1:
            fail(where, f"unit '{rep['unit']}' × {rep['max_number_of_units']}: only whole positions (unit 'pos', one unit) map to mambakit editors")
        keys = _key_candidates(rep, counter)
        key = next((k for k in keys if os.path.isfile(os.path.join(in_dir, f"intkey_{k}.bin"))
                    or os.path.isfile(os.path.join(in_dir, f"intkey_{k}.safetensors"))), None)
        if key is None:
            fail(os.path.join(in_dir, f"intkey_{keys[0]}.bin"), "not found (the saved state dict of representations"
                 f"[{i}]; pyvene names it after the intervention key)")
        file = os.path.join(in_dir, f"intkey_{key}.bin")
        if not os.path.isfile(file):
            file = os.path.join(in_dir, f"intkey_{key}.safetensors")
        loc = sorted_keys.index(key) if sorted_keys and key in sorted_keys else i
        tstr = types[i]
        m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)'?>?\s*$", str(tstr))
        tname = m.group(1) if m else str(tstr)
        items.append((loc, layer, rep, tname, file, i))
    items.sort(key=lambda t: t[0])

    act = resolve_activation(args.act)
    if args.act is None:
        warn("pyreft does not save an intervention's act_fn (ReftModel.load rebuilds it as linear): editors use the "
             "identity; pass --act if the model was trained with another")
    pos = parse_positions(args.positions)
    n = len(items)
    if pos is None:
        if args.positions is None:
            warn("pyreft does not save which positions were edited: every editor edits all positions; pass "
                 "--positions fN+lM (the training run's --position) to match it")
        plan = [[("", {"kind": "all"})] for _ in items]
    else:
        first, last = pos
        prefix = {"kind": "prefix", "n": first}
        suffix = {"kind": "suffix", "n": last, "excludeLast": False}
        if first and last:
            halves_match = n % 2 == 0 and [t[1] for t in items[: n // 2]] == [t[1] for t in items[n // 2:]]
            shared = {"yes": True, "no": False, "auto": not halves_match}[args.share_weights]
            if not shared and n % 2 != 0:
                fail(cfg_path, f"--share-weights no needs an even number of interventions (first half: first positions, "
                               f"second half: last positions), found {n}")
            if shared:  # one intervention edits the first and the last positions: the same weights twice
                plan = [[(".prefix", prefix), (".suffix", suffix)] for _ in items]
            else:  # get_intervention_locations: the first half of the interventions gets the first positions
                plan = [[(".prefix", prefix)] if j < n // 2 else [(".suffix", suffix)] for j in range(n)]
        else:
            plan = [[("", prefix if first else suffix)] for _ in items]

    editors = []
    names = collections.Counter()
    hidden = None
    for (loc, layer, rep, tname, file, i), uses in zip(items, plan):
        sd = load_state(file)
        if not isinstance(sd, dict):
            fail(file, "does not hold a state dict")
        formula, activation, R, W, b = _pyreft_editor_weights(tname, sd, file, act)
        r, d = R.shape
        if W.shape != (r, d) or b.shape != (r,):
            fail(file, f"shape mismatch: rotate layer gives R [{r}, {d}], learned source gives W {list(W.shape)} and b {list(b.shape)}")
        lrd = rep.get("low_rank_dimension")
        if isinstance(lrd, int) and lrd != r:
            fail(file, f"shape mismatch: config.json says low_rank_dimension {lrd}, the rotate layer has rank {r}")
        if isinstance(dims, list) and i < len(dims) and isinstance(dims[i], int) and dims[i] != d:
            fail(file, f"shape mismatch: config.json says the intervention is {dims[i]} wide, its weights are {d}")
        if hidden is None:
            hidden = d
        elif d != hidden:
            fail(file, f"shape mismatch: width {d}, other interventions have {hidden}")
        for suffix_name, positions in uses:
            base = f"l{layer}{suffix_name}"
            names[base] += 1
            name = base if names[base] == 1 else f"{base}.{names[base] - 1}"
            editors.append(EditorOut(name, "block", layer, positions, formula, activation, R, W, b, file))
    if args.hidden is not None and args.hidden != hidden:
        fail(in_dir, f"shape mismatch: the interventions are {hidden} wide, --hidden says {args.hidden}")
    write_outputs(args.output, "pyreft", editors, hidden, args.num_layers, args.bf16, args.decode)
    return editors


# ---------------------------------------------------------------------------------------------------------
# MRT (rt_modules.bin)
#
# Followed: comeandcode/MRT MRT/train/train_MRT.py (train(): rt_modules[name] = module.state_dict() for every
# module of model.named_modules() whose name contains mm_rt, vision_rt or lm_rt, torch.save'd as
# rt_modules.bin; get_locations_llava_new and make_supervised_data_module: intervention_len = 6),
# MRT/model/language_model/modeling_llamaMRT.py (RT_LM; LlamaModel.prefix_lm_rt / suffix_lm_rt, one per
# decoder layer, applied to the layer's output), MRT/model/multimodal_encoder/modeling_clipMRT.py
# (RT_Vision; CLIPEncoder.vision_rt[i] after encoder layer i for 1 <= i <= 22, nn.Identity elsewhere),
# MRT/model/llava_archMRT.py (mm_rt = RT_Vision on the projector output, every image token),
# MRT/model/language_model/llava_llama_MRT.py (intervention_locations only when there is no KV cache:
# prefill only), MRT/eval/mme_mrt.py (load_rt_modules; --intervention_len default 6).
#
# Every editor: rotate_layer.weight [d, r] (raw, re-orthonormalized each forward), learned_source.weight
# [r, d] and .bias [r] (nn.Linear(d, r)); out = h + act(learned_source(h) − h @ Q) @ Qᵀ with
# Q = get_orthogonal_weight(), act = ACT2FN["linear"] (no act_fn is ever passed): MRT's formula with
# R = Qᵀ. Since named_modules() lists containers and children too, the same tensors appear under several
# entries (model.prefix_lm_rt with keys "3.rotate_layer.weight", model.prefix_lm_rt.3, ...): the entries
# are flattened to full parameter names, which must agree.
# ---------------------------------------------------------------------------------------------------------

MRT_DEFAULT_LEN = 6
_MRT_MODULES = (
    (re.compile(r"(?:^|\.)mm_rt$"), "projector"),
    (re.compile(r"(?:^|\.)vision_rt\.(\d+)$"), "encoder"),
    (re.compile(r"(?:^|\.)prefix_lm_rt\.(\d+)$"), "prefix"),
    (re.compile(r"(?:^|\.)suffix_lm_rt\.(\d+)$"), "suffix"),
)


def _flatten(obj, where):
    flat = collections.OrderedDict()
    if not isinstance(obj, dict):
        fail(where, "does not hold a dict of state dicts")
    for k, v in obj.items():
        if isinstance(v, dict):
            for k2, t in v.items():
                if not isinstance(t, np.ndarray):
                    fail(where, f"entry '{k}.{k2}' is not a tensor")
                full = f"{k}.{k2}" if k else k2
                if full in flat and (flat[full].shape != t.shape or not np.array_equal(flat[full], t)):
                    fail(where, f"'{full}' appears twice with different values")
                flat[full] = t
        elif isinstance(v, np.ndarray):
            flat[k] = v
        else:
            fail(where, f"entry '{k}' is neither a state dict nor a tensor")
    return flat


def convert_mrt(args):
    src = args.input
    if os.path.isdir(src):
        for cand in ("rt_modules.bin", "rt_modules.safetensors"):
            if os.path.isfile(os.path.join(src, cand)):
                src = os.path.join(src, cand)
                break
        else:
            fail(os.path.join(src, "rt_modules.bin"), "not found (MRT's train_MRT.py saves the editors there)")
    folder = os.path.dirname(os.path.abspath(src))
    for extra in ("mm_projector.bin", "lm_head.bin"):
        if os.path.isfile(os.path.join(folder, extra)):
            warn(f"{os.path.join(folder, extra)} holds model weights MRT's evaluation loads too; they are not editors "
                 "and are not converted: the model mambakit runs must already include them")
    flat = _flatten(load_state(src), src)
    sites = set(s.strip() for s in (args.sites or "block,encoder,projector").split(",") if s.strip())
    bad_sites = sites - {"block", "encoder", "projector"}
    if bad_sites:
        fail("--sites", f"unknown site(s) {', '.join(sorted(bad_sites))} (block, encoder, projector)")
    pos = parse_positions(args.positions or f"f{MRT_DEFAULT_LEN}+l{MRT_DEFAULT_LEN}")
    if pos is None:
        fail("--positions", "MRT's language-model editors edit a prefix and a suffix: give fN+lM, fN or lM")
    first, last = pos

    modules = collections.OrderedDict()
    for full in flat:
        if full.endswith(".rotate_layer.weight"):
            modules[full[: -len(".rotate_layer.weight")]] = None
    if not modules:
        fail(src, "no '<module>.rotate_layer.weight' entries: not an MRT rt_modules file")
    found = {"projector": [], "encoder": [], "prefix": [], "suffix": []}
    for mod in modules:
        for rx, kind in _MRT_MODULES:
            m = rx.search(mod)
            if m:
                found[kind].append((int(m.group(1)) if m.groups() else 0, mod))
                break
        else:
            fail(src, f"module '{mod}' is none of MRT's editors (mm_rt, vision_rt.<i>, prefix_lm_rt.<i>, suffix_lm_rt.<i>)")
    act = resolve_activation(args.act)

    def weights(mod):
        w = _get(flat, f"{mod}.rotate_layer.weight", src, 2)
        W = _get(flat, f"{mod}.learned_source.weight", src, 2)
        b = _get(flat, f"{mod}.learned_source.bias", src, 1)
        if w.size == 0:
            fail(src, f"'{mod}.rotate_layer.weight' is empty (a ZeRO-3 partitioned save? gather the weights first)")
        d, r = w.shape
        if d < r:
            fail(src, f"shape mismatch: '{mod}.rotate_layer.weight' is {list(w.shape)}, a [d, r] weight with d >= r is expected")
        if W.shape != (r, d) or b.shape != (r,):
            fail(src, f"shape mismatch: '{mod}': rotate_layer.weight [{d}, {r}] needs learned_source.weight [{r}, {d}] "
                      f"and .bias [{r}], found {list(W.shape)} and {list(b.shape)}")
        return mrt_orthogonal_weight(w).T, f64(W), f64(b)

    editors = []
    lm_width = set()
    if "encoder" in sites:
        for layer, mod in sorted(found["encoder"]):
            R, W, b = weights(mod)
            editors.append(EditorOut(f"vision.{layer}", "encoder", layer, {"kind": "all"}, "mrt", act, R, W, b, src))
    if "projector" in sites:
        for _, mod in found["projector"]:
            R, W, b = weights(mod)
            lm_width.add(R.shape[1])
            editors.append(EditorOut("projector", "projector", None, {"kind": "all"}, "mrt", act, R, W, b, src))
    if "block" in sites:
        by_layer = collections.defaultdict(dict)
        for kind in ("prefix", "suffix"):
            for layer, mod in found[kind]:
                by_layer[layer][kind] = mod
        for layer in sorted(by_layer):
            # MRT's prefix is the first text after the image (an offset past the image tokens in its LM
            # forward): afterImage; without an image in the prompt it starts at position 0
            for kind, n, positions in (("prefix", first, {"kind": "prefix", "n": first, "afterImage": True}),
                                       ("suffix", last, {"kind": "suffix", "n": last, "excludeLast": True})):
                if kind in by_layer[layer] and n:
                    R, W, b = weights(by_layer[layer][kind])
                    lm_width.add(R.shape[1])
                    editors.append(EditorOut(f"{kind}.{layer}", "block", layer, positions, "mrt", act, R, W, b, src))
        if found["prefix"] and not first:
            warn("--positions selects no first positions: the prefix editors are left out")
        if found["suffix"] and not last:
            warn("--positions selects no last positions: the suffix editors are left out")
    if not editors:
        fail(src, f"no editors left for the sites {', '.join(sorted(sites))}")
    if len(lm_width) > 1:
        fail(src, f"shape mismatch: the language-model editors have different widths {sorted(lm_width)}")
    hidden = next(iter(lm_width)) if lm_width else None
    if args.hidden is not None:
        if hidden is not None and hidden != args.hidden:
            fail(src, f"shape mismatch: the language-model editors are {hidden} wide, --hidden says {args.hidden}")
        hidden = args.hidden
    if hidden is None:
        fail(src, "only vision-encoder editors: pass --hidden (the language model's hidden size) for editors.json")
    num_layers = args.num_layers
    prefix_layers = sorted(l for l, _ in found["prefix"])
    if num_layers is None and prefix_layers and prefix_layers == list(range(len(prefix_layers))):
        num_layers = len(prefix_layers)  # LlamaModel builds one prefix editor per decoder layer
    write_outputs(args.output, "mrt", editors, hidden, num_layers, args.bf16, args.decode)
    return editors


# ---------------------------------------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(prog="convert-editors.py", description="Convert pyreft / MRT representation editors into mambakit's editors format (docs/editors-format.md).")
    sub = p.add_subparsers(dest="source", required=True)

    def common(sp):
        sp.add_argument("--hidden", type=int, help="the model's hidden size: checked against the weights (MRT: required when only encoder editors are converted)")
        sp.add_argument("--num-layers", type=int, help="record model.num_layers in editors.json")
        sp.add_argument("--act", help="activation: identity, relu, gelu, silu or tanh (default identity: pyreft does not save act_fn and reloads it as linear; MRT always uses linear)")
        sp.add_argument("--bf16", action="store_true", help="write BF16 tensors (default F32)")
        sp.add_argument("--decode", action="store_true", help="also edit every decoded token (both sources edit the prompt only)")

    a = sub.add_parser("pyreft", help="a directory saved by pyreft's ReftModel.save")
    a.add_argument("input", metavar="IN_DIR")
    a.add_argument("output", metavar="OUT_DIR")
    a.add_argument("--positions", help="the training run's positions: fN+lM, fN, lM or all (pyreft does not save them; default all)")
    a.add_argument("--share-weights", choices=("auto", "yes", "no"), default="auto",
                   help="with fN+lM: whether one intervention edited both ends (pyreft's share_weights). auto: no when the "
                        "second half of the interventions repeats the first half's layers")
    common(a)
    b = sub.add_parser("mrt", help="MRT's rt_modules.bin (or the directory holding it)")
    b.add_argument("input", metavar="IN_FILE_OR_DIR")
    b.add_argument("output", metavar="OUT_DIR")
    b.add_argument("--positions", help=f"prefix/suffix lengths of the language-model editors, fN+lM (default f{MRT_DEFAULT_LEN}+l{MRT_DEFAULT_LEN}, MRT's intervention_len)")
    b.add_argument("--sites", help="comma-separated subset of block,encoder,projector to convert (default all)")
    common(b)
    args = p.parse_args(argv)
    for opt in ("hidden", "num_layers"):
        v = getattr(args, opt)
        if v is not None and v < 1:
            p.error(f"--{opt.replace('_', '-')} must be >= 1")
    try:
        editors = convert_pyreft(args) if args.source == "pyreft" else convert_mrt(args)
    except ConvertError as e:
        print(f"convert-editors: {e}", file=sys.stderr)
        return 1
    print(f"convert-editors: wrote {len(editors)} editors to {os.path.join(args.output, 'editors.json')} and editors.safetensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
