#!/usr/bin/env python3
"""Test fixtures for scripts/convert-editors.py, written without torch (numpy only).

    write-torch-bin.py pyreft OUT_DIR SPEC.json   a directory as pyreft's ReftModel.save writes it
    write-torch-bin.py mrt OUT_FILE SPEC.json     MRT's rt_modules.bin
    write-torch-bin.py evil OUT_FILE MARKER       a torch.save-shaped file whose pickle calls os.system
                                                  (it would create MARKER if a reader ran it)

Array values come in the spec as flat lists (row-major) so the test that made them holds the truth.

torch.save's zip layout, as torch 2.x writes it (pytorch/pytorch torch/serialization.py _save and
caffe2/serialize/inline_container.cc PyTorchStreamWriter): every entry inside one folder named after the
file's stem; records data.pkl (the object, pickle protocol 2), .format_version ("1"), .storage_alignment
("64"), byteorder ("little"), data/0, data/1, … (each storage's raw little-endian bytes, keys numbered in the
order the pickler first meets the storages, each record's data 64-byte aligned through an "FB" padding extra
field), then version ("3\n") and .data/serialization_id. Entries are stored, not compressed.
In data.pkl a tensor is torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
OrderedDict()) and a storage the persistent id ('storage', torch.<X>Storage, key, 'cpu', numel).
"""

import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np

# --- stand-ins for the torch globals the pickle names: pickle saves classes and functions by reference
# (module + name) and checks that the module attribute is the object, so they live in fake modules.
_torch = types.ModuleType("torch")
_utils = types.ModuleType("torch._utils")
_torch._utils = _utils


def _rebuild_tensor_v2(*args):  # never called here: the reader resolves the name
    raise RuntimeError("fixture stand-in")


_rebuild_tensor_v2.__module__ = "torch._utils"
_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
_STORAGE_CLASSES = {}
for _name in ("FloatStorage", "BFloat16Storage", "HalfStorage", "LongStorage"):
    _cls = type(_name, (), {"__module__": "torch"})
    setattr(_torch, _name, _cls)
    _STORAGE_CLASSES[_name] = _cls


def _bf16_bits(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")


class Storage:
    """One storage: its class name and raw bytes (several tensors may share it, as state dicts do)."""

    def __init__(self, values, dtype):
        a = np.asarray(values)
        if dtype == "f32":
            self.stype, self.raw = "FloatStorage", a.astype("<f4").tobytes()
        elif dtype == "bf16":
            self.stype, self.raw = "BFloat16Storage", _bf16_bits(a).tobytes()
        elif dtype == "f16":
            self.stype, self.raw = "HalfStorage", a.astype("<f2").tobytes()
        elif dtype == "i64":
            self.stype, self.raw = "LongStorage", a.astype("<i8").tobytes()
        else:
            raise ValueError(dtype)
        self.numel = int(a.size)


class Tensor:
    """A contiguous tensor over a storage; pickles as torch's tensors do (Tensor._reduce_ex_internal)."""

    def __init__(self, storage, shape, offset=0):
        self.storage, self.shape, self.offset = storage, tuple(int(s) for s in shape), offset

    def __reduce_ex__(self, protocol):
        stride, acc = [], 1
        for s in reversed(self.shape):
            stride.insert(0, acc)
            acc *= s
        return (_rebuild_tensor_v2, (self.storage, self.offset, self.shape, tuple(stride), False, collections.OrderedDict()))


def tensor(values, shape, dtype="f32"):
    a = np.asarray(values, dtype=np.float64).reshape(shape) if dtype != "i64" else np.asarray(values).reshape(shape)
    return Tensor(Storage(a.ravel(), dtype), a.shape)


class _Pickler(pickle.Pickler):
    def __init__(self, f):
        super().__init__(f, protocol=2)
        self.keys = {}
        self.storages = []

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            if id(obj) not in self.keys:
                self.keys[id(obj)] = str(len(self.keys))
                self.storages.append(obj)
            return ("storage", _STORAGE_CLASSES[obj.stype], self.keys[id(obj)], "cpu", obj.numel)
        return None


def _pickle(obj, pickler_cls=_Pickler):
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = _torch, _utils
    try:
        buf = io.BytesIO()
        p = pickler_cls(buf)
        p.dump(obj)
        return buf.getvalue(), getattr(p, "storages", [])
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _write_zip(path, records):
    """Stored entries, each record's data 64-byte aligned by an 'FB' extra field of 'Z' padding."""
    with open(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, data in records:
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_STORED
            start = f.tell() + 30 + len(name.encode()) + 4
            pad = (-start) % 64
            zi.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            zf.writestr(zi, data)


def torch_save(obj, path, pickler_cls=_Pickler):
    data, storages = _pickle(obj, pickler_cls)
    folder = os.path.splitext(os.path.basename(path))[0]
    records = [(f"{folder}/data.pkl", data), (f"{folder}/.format_version", b"1"), (f"{folder}/.storage_alignment", b"64"),
               (f"{folder}/byteorder", b"little")]
    records += [(f"{folder}/data/{i}", s.raw) for i, s in enumerate(storages)]
    records += [(f"{folder}/version", b"3\n"), (f"{folder}/.data/serialization_id", b"1234567890123456789012345678901234567890")]
    _write_zip(path, records)


def state_dict(items, metadata_prefixes=None):
    """An OrderedDict as nn.Module.state_dict returns it: with the _metadata attribute (module versions)."""
    sd = collections.OrderedDict(items)
    if metadata_prefixes is not None:
        sd._metadata = collections.OrderedDict((p, {"version": 1}) for p in metadata_prefixes)
    return sd


# --------------------------------------------------------------------------------------------------------
# pyreft: ReftModel.save = pyvene IntervenableModel.save (stanfordnlp/pyvene pyvene/models/intervenable_base.py):
# config.json from IntervenableConfig.save_pretrained (representations as RepresentationConfig lists, the
# field order of pyvene/models/configuration_intervenable_model.py; intervention_types as str(type(x));
# sorted_keys; intervention_dimensions; intervention_constant_sources) and torch.save(intervention.state_dict())
# as intkey_<key>.bin, key = layer_<l>_comp_<c>_unit_<u>_nunit_<n>#<i> (pyvene before 2025-02:
# layer.<l>.comp.<c>.unit.<u>.nunit.<n>#<i>).
# The state dicts (stanfordnlp/pyreft pyreft/interventions.py):
#   LoreftIntervention.state_dict (overridden): weight [r, d], bias [r] (learned_source = nn.Linear(d, r) in
#     the intervention dtype, bf16 by default), rotate_layer [d, r] (rotate_layer.weight.data, f32).
#   The others keep nn.Module.state_dict: the Intervention buffers embed_dim and interchange_dim (0-d int64),
#     ConsReFT / LobiReFT: learned_source [r] (an nn.Parameter, f32);
#     rotate_layer.parametrizations.weight.original [d, r] and rotate_layer.parametrizations.weight.0.base
#     [d, d] (torch.nn.utils.parametrizations.orthogonal); DiReFT / NoReFT: learned_source.weight/.bias;
#     NoReFT: proj_layer.weight [r, d] (+ .bias with add_bias).
# --------------------------------------------------------------------------------------------------------


def _pyreft_state(iv, d):
    t, r = iv["type"], iv["rank"]
    src = iv.get("source_dtype", "bf16")
    x = iv["tensors"]
    bufs = [("embed_dim", tensor([d], [], "i64")), ("interchange_dim", tensor([d], [], "i64"))]
    rot = lambda: [("rotate_layer.parametrizations.weight.original", tensor(x["original"], [d, r])),
                   ("rotate_layer.parametrizations.weight.0.base", tensor(x["base"], [d, d]))]
    if t == "LoreftIntervention":
        return state_dict([("weight", tensor(x["W"], [r, d], src)), ("bias", tensor(x["b"], [r], src)),
                           ("rotate_layer", tensor(x["rotate"], [d, r]))])
    if t in ("ConsreftIntervention", "LobireftIntervention"):
        return state_dict([("learned_source", tensor(x["source"], [r]))] + bufs + rot(),
                          ["", "rotate_layer", "rotate_layer.parametrizations", "rotate_layer.parametrizations.weight",
                           "rotate_layer.parametrizations.weight.0"])
    if t == "DireftIntervention":
        return state_dict(bufs + rot() + [("learned_source.weight", tensor(x["W"], [r, d], src)),
                                          ("learned_source.bias", tensor(x["b"], [r], src))],
                          ["", "rotate_layer", "rotate_layer.parametrizations", "rotate_layer.parametrizations.weight",
                           "rotate_layer.parametrizations.weight.0", "learned_source", "dropout"])
    if t == "NoreftIntervention":
        return state_dict(bufs + [("proj_layer.weight", tensor(x["proj"], [r, d], src)),
                                  ("learned_source.weight", tensor(x["W"], [r, d], src)),
                                  ("learned_source.bias", tensor(x["b"], [r], src))],
                          ["", "proj_layer", "learned_source", "dropout"])
    raise ValueError(f"no fixture layout for {t}")


def write_pyreft(out_dir, spec):
    os.makedirs(out_dir, exist_ok=True)
    d = spec["hidden"]
    old = spec.get("key_style") == "old"
    reps, types_, keys, counter = [], [], [], collections.Counter()
    for iv in spec["interventions"]:
        layer, comp = iv["layer"], iv.get("component", "block_output")
        rank = iv.get("low_rank_dimension", iv["rank"])
        # RepresentationConfig(layer, component, unit, max_number_of_units, low_rank_dimension, intervention_type,
        # intervention, subspace_partition, group_key, intervention_link_key, moe_key, source_representation,
        # hidden_source_representation, latent_dim), as save() leaves it (intervention and type set to None)
        reps.append([layer, comp, "pos", 1, rank, None, None, None, None, None, None, None, None, None])
        types_.append(iv.get("type_string", f"<class 'pyreft.interventions.{iv['type']}'>"))
        proposal = f"layer.{layer}.comp.{comp}.unit.pos.nunit.1" if old else f"layer_{layer}_comp_{comp}_unit_pos_nunit_1"
        keys.append(f"{proposal}#{counter[proposal]}")
        counter[proposal] += 1
    config = {
        "intervention_constant_sources": [True] * len(reps),
        "intervention_dimensions": [d] * len(reps),
        "intervention_types": types_,
        "mode": "parallel",
        "model_type": "<class 'transformers.models.llama.modeling_llama.LlamaForCausalLM'>",
        "representations": reps,
        "sorted_keys": keys,
        "transformers_version": "4.45.2",
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    for iv, key in zip(spec["interventions"], keys):
        if iv.get("omit_file"):
            continue
        torch_save(_pyreft_state(iv, d), os.path.join(out_dir, f"intkey_{key}.bin"))


# --------------------------------------------------------------------------------------------------------
# MRT: comeandcode/MRT MRT/train/train_MRT.py train(): for name, module in model.named_modules(): if 'mm_rt',
# 'vision_rt' or 'lm_rt' in name: rt_modules[name] = module.state_dict(); torch.save(rt_modules, 'rt_modules.bin').
# named_modules() yields containers and children too, so the file holds (LlavaLlamaForCausalLM's order):
#   model.prefix_lm_rt (ModuleList: "<i>.rotate_layer.weight", ...), model.prefix_lm_rt.<i> (RT_LM:
#   rotate_layer.weight [d, r] f32, learned_source.weight [r, d] bf16, learned_source.bias [r] bf16),
#   model.prefix_lm_rt.<i>.rotate_layer / .learned_source / .dropout (empty), the same for suffix_lm_rt
#   (modeling_llamaMRT.py: one per decoder layer, d = hidden_size, r = LM_rank, default 4), model.mm_rt
#   (llava_archMRT.py: RT_Vision(embed_dim=4096, V_rank)), then
#   model.vision_tower.vision_tower.vision_model.encoder.vision_rt (modeling_clipMRT.py: RT_Vision(1024, V_rank)
#   for 1 <= i <= 22, nn.Identity (empty state dict) elsewhere; V_rank default 6).
# Every entry shares its tensors' storages with the others, as state_dict() views do.
# --------------------------------------------------------------------------------------------------------


def write_mrt(path, spec):
    x = spec["tensors"]

    def rt(mod, d, r):
        t = x[mod]
        rot = t.get("rotate_dtype", "f32")
        return {"rotate_layer.weight": tensor(t["rotate"], [d, r], rot), "learned_source.weight": tensor(t["W"], [r, d], "bf16"),
                "learned_source.bias": tensor(t["b"], [r], "bf16")}

    out = collections.OrderedDict()

    def add_rt(name, params):
        out[name] = state_dict(params.items(), ["", "rotate_layer", "learned_source", "dropout"])
        out[f"{name}.rotate_layer"] = state_dict([("weight", params["rotate_layer.weight"])], [""])
        out[f"{name}.learned_source"] = state_dict([("weight", params["learned_source.weight"]), ("bias", params["learned_source.bias"])], [""])
        out[f"{name}.dropout"] = state_dict([], [""])

    def add_list(name, n, member):  # a ModuleList, then its members in order
        items, meta = [], [""]
        for i in range(n):
            p = member(i)
            meta += [f"{i}"] + ([f"{i}.rotate_layer", f"{i}.learned_source", f"{i}.dropout"] if p else [])
            items += [(f"{i}.{k}", v) for k, v in (p or {}).items()]
        out[name] = state_dict(items, meta)
        for i in range(n):
            p = member(i)
            if p:
                add_rt(f"{name}.{i}", p)
            else:
                out[f"{name}.{i}"] = state_dict([], [""])  # nn.Identity

    lm = spec.get("lm")
    if lm:
        for side in ("prefix", "suffix"):
            params = {i: rt(f"model.{side}_lm_rt.{i}", lm["hidden"], lm["rank"]) for i in range(lm["layers"])}
            add_list(f"model.{side}_lm_rt", lm["layers"], lambda i, p=params: p[i])
    pj = spec.get("projector")
    if pj:
        add_rt("model.mm_rt", rt("model.mm_rt", pj["hidden"], pj["rank"]))
    vi = spec.get("vision")
    if vi:
        base = "model.vision_tower.vision_tower.vision_model.encoder.vision_rt"
        params = {i: rt(f"{base}.{i}", vi["hidden"], vi["rank"]) for i in vi["rt_layers"]}
        add_list(base, vi["layers"], lambda i: params.get(i))
    torch_save(dict(out), path)


# --------------------------------------------------------------------------------------------------------


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def write_evil(path, marker):
    # the payload comes first, so a reader that resolved any global would run it before meeting a tensor
    torch_save(collections.OrderedDict([("payload", _Evil(marker)), ("weight", tensor([1.0, 2.0], [2]))]), path)


def main():
    kind, out, arg = sys.argv[1:4]
    if kind == "evil":
        write_evil(out, arg)
        return
    with open(arg) as f:
        spec = json.load(f)
    {"pyreft": write_pyreft, "mrt": write_mrt}[kind](out, spec)


if __name__ == "__main__":
    main()
