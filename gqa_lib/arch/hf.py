"""Read a Hugging Face `config.json` into a ModelConfig, offline and without `transformers`.

Each supported ``model_type`` (see :data:`SUPPORTED`; the rules per architecture are in
:mod:`gqa_lib.arch.hf_families`) is read the way transformers reads it: a field the file omits
takes transformers' default for that architecture, aliases (``n_embd``, ``num_layers``) are
honoured, ``rope_parameters`` (transformers 5) or ``rope_theta`` gives the RoPE base, and the
per-layer attention pattern is ``layer_types`` or the architecture's rule for deriving it.
Every value is type-checked: a string where a boolean belongs, a zero or a huge head count, a
list where a name belongs is refused in one line naming the field, never read as something
else. Anything the cost model cannot represent exactly is refused the same way, and so is
what transformers itself refuses to build where a count would not notice: a whole number
written as a float (64.0) in an integer field, an explicit null where its field takes none, a
pad_token_id outside the vocabulary, a hidden size its check wants divisible by the head count.
Refusals name the config.json's fields (num_key_value_heads, not n_kv_head) and say when a
value is transformers' default for a field the file omits. Fields that change no count
(initializer_range, rms_norm_eps, a RoPE scaling's keys) are not checked. The oracles are
tests/test_hf_oracle.py (transformers builds each type on the meta device and its parameter
count and cache windows must equal ours) and tests/test_hf_refusals.py (what transformers
refuses, gqa refuses).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gqa_lib.arch import hf_families
from gqa_lib.arch.config import ModelConfig
from gqa_lib.arch.hf_defaults import HIDDEN_DIVISIBLE, NO_PADDING_IDX, NULL_REFUSED
from gqa_lib.errors import GQAError

SUPPORTED: tuple[str, ...] = tuple(sorted(hf_families.FAMILIES))
MAX_INT = 2**31 - 1  # larger shape fields are refused: no real model has them
_MISSING = object()


class Reader:
    """Typed access to one config.json: the file's value, else transformers' default."""

    def __init__(self, cfg: Mapping[str, Any], origin: str, model_type: str,
                 defaults: Mapping[str, Any], aliases: Mapping[str, str]):
        self.cfg, self.origin, self.model_type = cfg, origin, model_type
        self.defaults, self.aliases = defaults, aliases

    def fail(self, message: str) -> GQAError:
        return GQAError(f"{self.origin}: {message}")

    def has(self, key: str) -> bool:
        return key in self.cfg or any(a in self.cfg for a, k in self.aliases.items() if k == key)

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        """The file's value (under its name or an alias), else the default, else _MISSING."""
        if key in self.cfg:
            return self.cfg[key]
        for alias, k in self.aliases.items():
            if k == key and alias in self.cfg:
                return self.cfg[alias]
        return self.defaults.get(key, default)

    def int(self, key: str, *, minimum: int = 1, default: Any = _MISSING,
            null: Any = _MISSING) -> Any:
        """An integer field in minimum..MAX_INT; ``null`` is what an explicit null means."""
        v = self.raw(key, default)
        if v is _MISSING:
            raise self.fail(f"required field {key!r} is missing")
        if v is None and null is not _MISSING:
            return null
        if isinstance(v, float) and math.isfinite(v) and v == int(v):
            raise self.fail(f"field {key!r} must be an integer, got {v!r} (transformers "
                            "refuses a float in an integer field; write it without .0)")
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"field {key!r} must be an integer, got {_show(v)}")
        if not minimum <= v <= MAX_INT:
            raise self.fail(f"field {key!r} must be an integer in {minimum}..{MAX_INT}, "
                            f"got {_show(v)}")
        return v

    def opt_int(self, key: str, *, minimum: int = 1) -> int | None:
        """An integer field where null (or absent without default) means "none"."""
        return self.int(key, minimum=minimum, default=None, null=None)

    def bool(self, key: str, default: Any = _MISSING) -> bool:
        v = self.raw(key, default)
        if v is _MISSING:
            raise self.fail(f"required field {key!r} is missing")
        if not isinstance(v, bool):
            raise self.fail(f"field {key!r} must be true or false, got {_show(v)}")
        return v

    def str(self, key: str, default: Any = _MISSING) -> str:
        v = self.raw(key, default)
        if v is _MISSING:
            raise self.fail(f"required field {key!r} is missing")
        if not isinstance(v, str):
            raise self.fail(f"field {key!r} must be a string, got {_show(v)}")
        return v

    def int_list(self, key: str, default: Any = None) -> list[int] | None:
        v = self.raw(key, default)
        if v is None:
            return None
        if not isinstance(v, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) for x in v):
            raise self.fail(f"field {key!r} must be a list of integers, got {_show(v)}")
        return v

    def str_list(self, key: str) -> list[str] | None:
        v = self.raw(key, None)
        if v is None:
            return None
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(f"field {key!r} must be a list of strings, got {_show(v)}")
        return v

    def rope_theta(self) -> float:
        """rope_parameters["rope_theta"] (transformers 5; per layer kind for hybrid models:
        the full-attention one), else rope_theta, else the architecture's default."""
        params = self.cfg.get("rope_parameters")
        if params is not None:
            if not isinstance(params, Mapping):
                raise self.fail(f"field 'rope_parameters' must be an object, got {_show(params)}")
            if "rope_theta" not in params and isinstance(params.get("full_attention"), Mapping):
                params = params["full_attention"]
            if "rope_theta" in params:
                return _positive_float(self, "rope_parameters.rope_theta", params["rope_theta"])
        if "rope_theta" in self.cfg:
            return _positive_float(self, "rope_theta", self.cfg["rope_theta"])
        return float(self.defaults.get("rope_theta", 10_000.0))


def _positive_float(r: Reader, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (
            math.isfinite(v) and v > 0):
        raise r.fail(f"field {key!r} must be a positive number, got {_show(v)}")
    return float(v)


def _show(v: Any) -> str:
    """repr of a bad value, cut to one short line."""
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def from_hf_config(source: str | Path | Mapping[str, Any]) -> ModelConfig:
    """Build a ModelConfig from a config.json path, a directory holding one, or its dict.

    Multimodal configs whose decoder is a supported text model (Gemma 3, Llama 4) are read
    through their ``text_config``: the cost is the language model's.
    """
    cfg, origin = _load(source)
    given = cfg.get("model_type")
    model_type = given if isinstance(given, str) else ""  # a list or null is refused below
    text = hf_families.TEXT_CONFIGS.get(model_type)
    if text is not None:
        sub = cfg.get("text_config")
        if not isinstance(sub, Mapping):
            raise GQAError(f"{origin}: model_type={model_type!r} needs a 'text_config' object")
        top = cfg
        cfg = {"model_type": text, **sub}
        if model_type in hf_families.TIED_BY_WRAPPER:
            # transformers builds the whole multimodal model, whose LM head is tied by the
            # wrapper's own tie_word_embeddings (default true), not by text_config's
            cfg["tie_word_embeddings"] = top.get("tie_word_embeddings",
                                                 hf_families.TIED_BY_WRAPPER[model_type])
        model_type = cfg["model_type"]
        if model_type != text:
            raise GQAError(f"{origin}: text_config.model_type={model_type!r}, expected {text!r}")
    if model_type not in hf_families.FAMILIES:
        hint = hf_families.UNSUPPORTED.get(model_type, "")
        raise GQAError(
            f"{origin}: model_type={_show(given)} is not supported"
            + (f" ({hint})" if hint else "")
            + f"; supported: {', '.join(SUPPORTED)}; a llama-shaped model can be costed with "
            "the shape flags (--n-layer --d-model --n-head --n-kv-head --d-head --d-ff)"
        )
    fam = hf_families.FAMILIES[model_type]
    reader = Reader(cfg, origin, model_type, fam.defaults, fam.aliases)
    for alias, key in fam.aliases.items():
        # which of the two transformers keeps differs by family (gpt2 the field, exaone the
        # alias): a file that gives both, differently, is refused rather than guessed
        if alias in cfg and key in cfg and cfg[alias] != cfg[key]:
            raise reader.fail(f"{alias}={_show(cfg[alias])} and {key}={_show(cfg[key])} name the "
                              "same field and disagree; keep one")
    _refuse_foreign_fields(reader, fam)
    _refuse_what_transformers_refuses(reader)
    try:
        fields = fam.build(reader)
        fields.setdefault("name", str(cfg.get("_name_or_path") or origin))
        return ModelConfig(**fields)
    except GQAError as e:
        message = str(e)
        if not message.startswith(origin):  # ModelConfig's own words, in its field names
            message = f"{origin}: {_in_hf_names(reader, message)}"
        raise GQAError(message) from None


# ModelConfig's field names in a refusal, as a config.json names them (longest first)
_HF_NAMES = {"n_experts_active": "num_experts_per_tok", "n_kv_head": "num_key_value_heads",
             "n_head": "num_attention_heads", "n_layer": "num_hidden_layers",
             "d_model": "hidden_size", "d_head": "head_dim", "d_ff": "intermediate_size"}
_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")


def _in_hf_names(r: Reader, message: str) -> str:
    """A ModelConfig refusal in the file's field names, with a note for each named field the
    file omits whose value is transformers' default for the type."""
    names = dict(_HF_NAMES)
    if r.model_type == "falcon":
        names.update(n_kv_head="num_kv_heads", d_ff="ffn_hidden_size")
    elif r.model_type == "gpt2":
        names.update(d_ff="n_inner")
    names["n_experts"] = next((k for k in _EXPERT_KEYS if k in r.cfg),  # the file's name
                              next((k for k in _EXPERT_KEYS if k in r.defaults), "num_experts"))
    pattern = re.compile(r"\b(" + "|".join(sorted(names, key=len, reverse=True)) + r")\b")
    used = dict.fromkeys(names[m] for m in pattern.findall(message))
    out = pattern.sub(lambda m: names[m.group(1)], message)
    out = out.replace("pass head_dim explicitly", "give head_dim")
    notes = [f"{k} omitted: transformers' {r.model_type} default is {r.defaults[k]}"
             for k in used if not r.has(k) and r.defaults.get(k) is not None]
    return out + (f" ({'; '.join(notes)})" if notes else "")


def _refuse_what_transformers_refuses(r: Reader) -> None:
    """What transformers will not build though a count would not notice: a whole number
    written as a float in an integer field (one gqa does not read included), an explicit
    null in a field that takes none, a hidden size its check wants divisible by the head
    count, a pad_token_id outside the vocabulary (nn.Embedding's padding_idx)."""
    for key, v in r.cfg.items():  # also where gqa does not read it (a window left unused)
        if isinstance(r.defaults.get(key), int) and not isinstance(r.defaults[key], bool):
            if isinstance(v, float) and math.isfinite(v) and v == int(v):
                r.int(key)  # refused as a float, by name
    for key, types in NULL_REFUSED.items():
        if r.model_type in types and r.has(key) and r.raw(key) is None:
            raise r.fail(f"field {key!r} is null, which transformers' {r.model_type} refuses; "
                         "give a value or omit the field for its default")
    if r.model_type in HIDDEN_DIVISIBLE:
        d, h = r.int("hidden_size"), r.int("num_attention_heads")
        if d % h:
            raise r.fail(f"hidden_size={d} is not a multiple of num_attention_heads={h}, which "
                         f"transformers' {r.model_type} refuses (head_dim does not change that)")
    if r.model_type not in NO_PADDING_IDX:
        pad = r.raw("pad_token_id", None)
        if pad is not None:
            pad = r.int("pad_token_id", minimum=-MAX_INT)
            vocab = r.int("vocab_size")
            if not -vocab <= pad < vocab:
                source = "" if r.has("pad_token_id") else f" (transformers' {r.model_type} default)"
                raise r.fail(f"pad_token_id={pad}{source} is outside the vocabulary of "
                             f"vocab_size={vocab}: transformers refuses it (the embedding's "
                             "padding index); give a pad_token_id below vocab_size, or null")


# Fields that change the counts; read only by the families whose defaults name them.
_STRUCTURAL = ("num_local_experts", "num_experts", "n_routed_experts", "moe_intermediate_size",
               "kv_lora_rank", "q_lora_rank", "attention_chunk_size", "moe_layers")


def _refuse_foreign_fields(r: Reader, fam: hf_families.Family) -> None:
    """A mixture-of-experts or latent-attention field in a family that has none (a llama
    config with num_local_experts) would be ignored by transformers too, but it says the file
    describes another architecture: refuse it rather than cost a dense model. A look-alike
    key the family's config class does not read (granitemoe's num_experts) is refused where
    it differs from the field transformers builds from: the file means one, transformers
    builds the other."""
    for k, read in fam.not_read.items():
        v = r.cfg.get(k)
        if v is not None and v != r.raw(read, None):
            here = (f"here {_show(r.cfg[read])}" if read in r.cfg else
                    f"default {_show(r.raw(read))}" if r.raw(read, None) is not None else
                    "absent")
            raise r.fail(f"{k}={_show(v)} is not read by transformers' {r.model_type}, which "
                         f"reads {read!r} instead ({here}); rename the field")
    known = set(fam.defaults) | set(fam.aliases) | set(fam.not_read)
    for k in _STRUCTURAL:
        if k not in known and r.cfg.get(k) not in (None, 0, [], False):
            kind = ("mixture-of-experts" if "expert" in k or "moe" in k else
                    "latent-attention" if "lora" in k else "chunked-attention")
            raise r.fail(f"{k}={_show(r.cfg[k])}: a {kind} field, but transformers' "
                         f"{r.model_type} has no {kind}; check model_type")


def _load(source: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(source, Mapping):
        return dict(source), "HF config"
    if not isinstance(source, (str, os.PathLike)):
        raise GQAError(f"HF config must be a config.json path, its folder or a dict, got "
                       f"{type(source).__name__} {source!r:.80}")
    p = Path(source)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise GQAError(f"HF config {str(source)!r}: " + (
            "the folder has no config.json" if Path(source).is_dir() else "not found")
            + " (give a config.json or its folder)")
    try:
        data = json.loads(p.read_bytes().decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise GQAError(f"{p}: not valid JSON: not UTF-8 text (binary or UTF-16 file?)") from None
    except RecursionError:
        raise GQAError(f"{p}: not valid JSON: nested too deeply") from None
    except (ValueError, OverflowError) as e:
        raise GQAError(f"{p}: not valid JSON: {str(e).splitlines()[0][:120]}") from None
    if not isinstance(data, dict):
        raise GQAError(f"{p}: expected a JSON object at the top level")
    return data, str(p)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
