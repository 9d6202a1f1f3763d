"""Model configurations: a frozen, self-validating dataclass and presets of published models.

The head size ``d_head`` is a free field: ``n_head * d_head`` need not equal ``d_model``
(the paper's first idea; Gemma-7B and Qwen3 do this in the wild). Field names follow the
paper's notation: L = n_layer, d = d_model, n_h = n_head, n_kv = n_kv_head, d_h = d_head.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gqa_lib.arch.layout import (check_extensions, LAYER_TYPES,  # noqa: F401 (re-exported)
                                 norm_vectors_of)
from gqa_lib.errors import MAX_EXACT, GQAError, check_choice, check_int, did_you_mean

FFN_KINDS = ("swiglu", "geglu", "reglu", "gelu", "relu")  # the first three are gated (3 matrices)
NORM_KINDS = ("rmsnorm", "layernorm")

PAPER_VOCAB = 50_304  # GPT-2 BPE padded to a multiple of 64 (paper, Sec. 5)
PAPER_D_HEAD = 64


def check_positive_int(param: str, value: Any) -> int:
    """Return `value` as int if it is a positive integer (at most 2**53; an integral float
    such as 2048.0 is accepted), else raise a GQAError naming `param`."""
    try:
        return check_int(param, value, lo=1, hi=MAX_EXACT)
    except GQAError:
        raise GQAError(f"{param} must be a positive integer (at most 2**53), got "
                       f"{value!r}") from None


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a decoder-only GQA transformer; everything the cost model and `model.py` need.

    ``d_head`` defaults to ``d_model // n_head`` and ``d_ff`` to ``int(8 * d_model / 3)`` (the
    paper's SwiGLU width) when left as None. Use :func:`dataclasses.replace` to derive variants;
    validation runs again on every replace.
    """

    n_layer: int
    d_model: int
    n_head: int
    n_kv_head: int
    d_head: int | None = None
    d_ff: int | None = None
    vocab_size: int = PAPER_VOCAB
    ffn: str = "swiglu"
    tie_embeddings: bool = True
    norm: str = "rmsnorm"
    qk_norm: bool = False
    qkv_bias: bool = False
    rope_theta: float = 500_000.0
    sliding_window: int | None = None
    # ----- per-layer attention: None = every layer alike (all windowed if sliding_window) ----
    layer_types: tuple[str, ...] | None = None
    attention_chunk: int | None = None
    # ----- small parts some architectures add (defaults: the paper's block) -----------------
    n_norms: int = 2            # d_model-wide norms per layer (Gemma 2/3: 4; parallel blocks: 1)
    # vectors per norm: 0, 1 (gain), 2 (gain, bias); None (also stored where it is given
    # equal to it): the norm's own, so that replace(cfg, norm=...) carries it along
    norm_vectors: int | None = None
    qk_norm_heads: bool = False  # qk-norm gains per head, (n_h + n_kv) d_h, not one d_h each
    o_bias: bool = False
    ffn_bias: bool = False
    lm_head_bias: bool = False
    n_positions: int = 0        # rows of a learned position embedding (GPT-2)
    attn_sinks: bool = False    # one learned sink logit per query head and layer (gpt-oss)
    # ----- mixture of experts: n_experts = 0 is a dense FFN of width d_ff in every layer ----
    n_experts: int = 0
    n_experts_active: int = 0
    d_ff_expert: int | None = None
    d_ff_shared: int = 0        # total width of the always-on shared expert(s)
    n_dense_layers: int | None = None  # layers with a dense d_ff FFN (MoE); None: all (dense)
    router_bias: bool = False
    expert_bias: bool = False
    shared_expert_gate: bool = False  # Qwen2-MoE: a d_model -> 1 gate on the shared expert
    # ----- multi-head latent attention (DeepSeek V2/V3): kv_lora_rank = 0 is plain GQA ------
    kv_lora_rank: int = 0
    q_lora_rank: int = 0        # 0: queries projected directly (V2-Lite)
    qk_rope_dim: int = 0
    qk_nope_dim: int = 0
    v_head_dim: int = 0
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for f in ("n_layer", "d_model", "n_head", "n_kv_head", "vocab_size"):
            object.__setattr__(self, f, check_positive_int(f, getattr(self, f)))
        if self.n_head % self.n_kv_head:
            raise GQAError(
                f"n_head={self.n_head} is not a multiple of n_kv_head={self.n_kv_head}"
            )
        if self.d_head is None:
            if self.d_model % self.n_head:
                raise GQAError(
                    f"d_head not given and d_model={self.d_model} is not a multiple of "
                    f"n_head={self.n_head}; pass d_head explicitly"
                )
            object.__setattr__(self, "d_head", self.d_model // self.n_head)
        object.__setattr__(self, "d_head", check_positive_int("d_head", self.d_head))
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", ffn_width(self.d_model))
        object.__setattr__(self, "d_ff", check_positive_int("d_ff", self.d_ff))
        if self.sliding_window is not None:
            object.__setattr__(
                self, "sliding_window", check_positive_int("sliding_window", self.sliding_window)
            )
        check_choice("ffn", self.ffn, FFN_KINDS)
        check_choice("norm", self.norm, NORM_KINDS)
        for f in ("tie_embeddings", "qk_norm", "qkv_bias"):
            if not isinstance(getattr(self, f), bool):
                raise GQAError(f"{f} must be true or false, got {getattr(self, f)!r}")
        if (isinstance(self.rope_theta, bool) or not isinstance(self.rope_theta, numbers.Real)
                or not 0 < self.rope_theta < math.inf):
            raise GQAError(f"rope_theta must be a positive number (finite), got "
                           f"{self.rope_theta!r}")
        if not isinstance(self.name, str):
            raise GQAError(f"name must be a string, got {self.name!r}")
        object.__setattr__(self, "rope_theta", float(self.rope_theta))
        check_extensions(self)

    # ----- derived quantities -------------------------------------------------------------
    @property
    def layer_windows(self) -> tuple[int | None, ...]:
        """Keys each layer can attend, in order: None (all), W (sliding) or C (chunked)."""
        if self.layer_types is None:
            return (self.sliding_window,) * self.n_layer
        w = {"full_attention": None, "sliding_attention": self.sliding_window,
             "chunked_attention": self.attention_chunk}
        return tuple(w[t] for t in self.layer_types)

    @property
    def n_window_layers(self) -> int:
        """Layers with a sliding window (local attention)."""
        if self.layer_types is None:
            return self.n_layer if self.sliding_window else 0
        return self.layer_types.count("sliding_attention")

    @property
    def n_chunk_layers(self) -> int:
        """Layers with chunked attention."""
        return 0 if self.layer_types is None else self.layer_types.count("chunked_attention")

    @property
    def n_norm_vectors(self) -> int:
        """Vectors each norm learns: ``norm_vectors`` where it is set apart from the norm's
        own count, else RMSNorm 1 (gain), LayerNorm 2 (gain and bias)."""
        return norm_vectors_of(self.norm) if self.norm_vectors is None else self.norm_vectors

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def n_moe_layers(self) -> int:
        """Layers whose FFN is the mixture of experts."""
        return 0 if self.n_dense_layers is None else self.n_layer - self.n_dense_layers

    @property
    def group_size(self) -> int:
        """Query heads sharing one KV head, n_head / n_kv_head (1 = MHA, n_head = MQA)."""
        return self.n_head // self.n_kv_head

    @property
    def ffn_gated(self) -> bool:
        """True for SwiGLU/GeGLU/ReGLU (three d_model x d_ff matrices), False for GELU/ReLU
        (two)."""
        return self.ffn in ("swiglu", "geglu", "reglu")

    @property
    def decoupled(self) -> bool:
        """True when the attention width n_head * d_head differs from d_model."""
        return self.n_head * self.d_head != self.d_model

    @property
    def label(self) -> str:
        """Short human label, e.g. ``L16 d2048 H(32,8) dh64``."""
        return (
            f"L{self.n_layer} d{self.d_model} H({self.n_head},{self.n_kv_head}) dh{self.d_head}"
        )

    # ----- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Build from a mapping of field names; unknown keys are an error, not ignored."""
        if not isinstance(data, Mapping):
            raise GQAError(f"a model config must be a mapping of fields, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in names]
        if unknown:
            k = unknown[0]
            raise GQAError(
                f"unknown model config field {k!r}{did_you_mean(str(k), names)}; "
                f"allowed: {', '.join(names)}"
            )
        missing = [n for n in ("n_layer", "d_model", "n_head", "n_kv_head") if n not in data]
        if missing:
            raise GQAError(f"model config is missing required field(s): {', '.join(missing)}")
        return cls(**dict(data))

    @classmethod
    def from_file(cls, path: str | Path) -> ModelConfig:
        """Read a TOML or JSON file of config fields. Parsed as data, never executed.

        A file with a ``[model]`` table (TOML) or ``"model"`` key (JSON) uses that table.
        """
        data = read_data_file(path)
        if "model" in data and isinstance(data["model"], Mapping):
            data = data["model"]
        try:
            return cls.from_dict(data)
        except GQAError as e:
            raise GQAError(f"{path}: {e}") from None


MAX_CONFIG_BYTES = 1 << 20  # a config or grid file is text of a few KB; 1 MiB is plenty
MAX_NESTING = 32  # tables within tables; real configs nest 2-3 deep


def read_data_file(path: str | Path) -> dict[str, Any]:
    """Parse a .toml or .json file into a dict; errors name the file and the problem.

    Refused in one line: a missing file or a folder, more than 1 MiB, text that is not
    UTF-8 (UTF-8/16/32 with a byte-order mark are decoded), nesting deeper than 32, numbers
    JSON cannot hold (1e999 -> inf, NaN), and a top level that is not a table/object.
    """
    p = Path(path)
    if not p.is_file():
        raise GQAError(f"config file {str(p)!r} does not exist"
                       + (" (it is a folder)" if p.is_dir() else ""))
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise GQAError(f"config file {str(p)!r} must end in .toml or .json, not {suffix!r}")
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise GQAError(f"{p}: {size:,} bytes is too large for a config file (at most "
                           f"{MAX_CONFIG_BYTES:,})")
        raw = p.read_bytes()
    except OSError as e:
        raise GQAError(f"{p}: cannot read ({e.strerror or e})") from None
    text = _decode_text(p, raw)
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        else:
            data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise GQAError(f"{p}: nested too deeply to be a config file") from None
    except (ValueError, TypeError) as e:
        if isinstance(e, GQAError):
            raise GQAError(f"{p}: {e}") from None
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GQAError(f"{p}: cannot parse {suffix[1:].upper()}: {first}") from None
    if not isinstance(data, dict):
        raise GQAError(f"{p}: expected a {'JSON object' if suffix == '.json' else 'table'} at "
                       "the top level")
    _check_plain(p, data, 0)
    return data


def _decode_text(p: Path, raw: bytes) -> str:
    boms = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
            (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
    encoding = next((enc for bom, enc in boms if raw.startswith(bom)), "utf-8")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise GQAError(f"{p}: not {encoding.upper()} text (byte {e.start}); save it as "
                       "UTF-8") from None
    if "\x00" in text:
        raise GQAError(f"{p}: holds NUL characters; a config file is UTF-8 text")
    return text


def _no_constant(name: str) -> Any:
    raise GQAError(f"{name} is not a number a config can hold")


def _check_plain(p: Path, value: Any, depth: int) -> None:
    """Nesting depth and non-finite floats (JSON's 1e999 parses to inf)."""
    if depth > MAX_NESTING:
        raise GQAError(f"{p}: nested deeper than {MAX_NESTING} levels")
    if isinstance(value, dict):
        for v in value.values():
            _check_plain(p, v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_plain(p, v, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise GQAError(f"{p}: holds a non-finite number ({value!r}: too large for a float, "
                       "or NaN)")


# ---------------------------------------------------------------------------------------------
# Presets. Published totals live in PUBLISHED_PARAMS and are pinned by tests/test_presets.py.
# ---------------------------------------------------------------------------------------------
def _llama(name, n_layer, d_model, n_head, n_kv_head, d_ff, vocab, tied, theta, d_head=None):
    return ModelConfig(
        n_layer=n_layer, d_model=d_model, n_head=n_head, n_kv_head=n_kv_head,
        d_head=d_head, d_ff=d_ff, vocab_size=vocab, ffn="swiglu", tie_embeddings=tied,
        rope_theta=theta, name=name,
    )


# Shapes you would build: GPU matmuls run at full speed only on dimensions that are multiples
# of the tensor-core tile. Llama rounds its FFN width up to `multiple_of` = 256; the paper's
# rule int(8 d / 3) does not (d = 2048 gives 5,461, which prefilled 2.8x and trained 2.2x
# slower on an H200 than 5,632: data/bench/h200-2026-12-04.json). The paper reproduction keeps
# int(8 d / 3), since its numbers depend on it; serving, the GPU benchmark and the recipe's
# "what to build" output use aligned shapes.
FFN_MULTIPLE_OF = 256


def round_up(x: int, multiple_of: int, *, name: str = "x") -> int:
    """The smallest multiple of `multiple_of` that is >= x (x and multiple_of positive; a
    bad x is named `name` in the error)."""
    x = check_positive_int(name, x)
    m = check_positive_int("multiple_of", multiple_of)
    return -(-x // m) * m


def ffn_width(d_model: int, multiple_of: int = 1) -> int:
    """The SwiGLU width of the paper's shape rule, int(8 d / 3), rounded up to `multiple_of`
    (1: the paper's own rule; FFN_MULTIPLE_OF: Llama's, the width one would build)."""
    d = check_positive_int("d_model", d_model)
    return round_up(int(8 * d / 3), multiple_of, name=f"d_ff = int(8 d_model / 3) of d_model={d}")


def aligned(cfg: ModelConfig, multiple_of: int = FFN_MULTIPLE_OF) -> ModelConfig:
    """`cfg` with its FFN width rounded up to `multiple_of` (name suffixed "-ff<multiple>"
    when it changes); d_model and the head dimension are left as they are (the paper's
    d = 64 L and d_head = 64 already are multiples of 64)."""
    d_ff = round_up(cfg.d_ff, multiple_of)
    if d_ff == cfg.d_ff:
        return cfg
    name = f"{cfg.name}-ff{multiple_of}" if cfg.name else ""
    return dataclasses.replace(cfg, d_ff=d_ff, name=name)


def paper_family(n_layer: int, n_head: int | None = None, n_kv_head: int = 8) -> ModelConfig:
    """A model of the paper's figure family: d_model = 64 L, d_head = 64, d_ff = int(8d/3).

    Default heads are the paper's "Llama-3 GQA" baseline, (n_head, n_kv_head) = (d/64, 8).
    At L = 12, 20, 28 that baseline has 12, 20, 28 query heads over 8 KV heads, which no GQA
    grouping allows (a known inconsistency of the paper's figures): those points can be costed
    through :class:`gqa_lib.cost.ConfigBatch` but are not valid ModelConfigs.
    """
    n_layer = check_positive_int("n_layer", n_layer)
    d_model = 64 * n_layer
    n_head = d_model // PAPER_D_HEAD if n_head is None else n_head
    return ModelConfig(
        n_layer=n_layer, d_model=d_model, n_head=n_head, n_kv_head=n_kv_head,
        d_head=PAPER_D_HEAD, vocab_size=PAPER_VOCAB,
        name=f"paper-d64L-L{n_layer}",
    )


ASPECT_RULES = ("d64L", "paper")  # N -> shape: d = 64 L, or the paper's Table 9 shapes

# (n_layer, d_model) of the paper's scaling-fit models, Table 9.
PAPER_TABLE9_SHAPES = (
    (4, 256), (6, 512), (12, 768), (12, 1024), (16, 1024), (24, 1280), (24, 1536), (36, 1536),
)


def alternating(n_layer: int, every: int) -> tuple[str, ...]:
    """Layer kinds where every `every`-th layer is global and the others local (sliding), the
    local ones first: (local, global) for every = 2 (Gemma 2, gpt-oss), five local then one
    global for every = 6 (Gemma 3). "Which layers are global" as a recipe knob."""
    every = check_positive_int("every", every)
    return tuple("full_attention" if (i + 1) % every == 0 else "sliding_attention"
                 for i in range(check_positive_int("n_layer", n_layer)))


def _build_presets() -> dict[str, ModelConfig]:
    p = {
        # Meta Llama 3.x: config.json of meta-llama/Llama-3.2-1B etc. on the Hugging Face Hub.
        "llama-3.2-1b": _llama("llama-3.2-1b", 16, 2048, 32, 8, 8192, 128_256, True, 500_000.0),
        "llama-3.2-3b": _llama("llama-3.2-3b", 28, 3072, 24, 8, 8192, 128_256, True, 500_000.0,
                               d_head=128),
        "llama-3.1-8b": _llama("llama-3.1-8b", 32, 4096, 32, 8, 14_336, 128_256, False, 500_000.0),
        "llama-3.1-70b": _llama("llama-3.1-70b", 80, 8192, 64, 8, 28_672, 128_256, False,
                                500_000.0),
        "mistral-7b-v0.1": dataclasses.replace(
            _llama("mistral-7b-v0.1", 32, 4096, 32, 8, 14_336, 32_000, False, 10_000.0),
            sliding_window=4096,
        ),
        "qwen2.5-0.5b": dataclasses.replace(
            _llama("qwen2.5-0.5b", 24, 896, 14, 2, 4864, 151_936, True, 1_000_000.0),
            qkv_bias=True,
        ),
        "qwen2.5-7b": dataclasses.replace(
            _llama("qwen2.5-7b", 28, 3584, 28, 4, 18_944, 152_064, False, 1_000_000.0),
            qkv_bias=True,
        ),
        "qwen3-8b": dataclasses.replace(
            _llama("qwen3-8b", 36, 4096, 32, 8, 12_288, 151_936, False, 1_000_000.0, d_head=128),
            qk_norm=True,
        ),
        # Gemma-7B: 16 heads x 256 = 4096 != d_model 3072; GeGLU; tied embeddings.
        "gemma-7b": ModelConfig(
            n_layer=28, d_model=3072, n_head=16, n_kv_head=16, d_head=256, d_ff=24_576,
            vocab_size=256_000, ffn="geglu", tie_embeddings=True, rope_theta=10_000.0,
            name="gemma-7b",
        ),
        # Gemma-2-9B: local (window 4096) and global layers alternate, local first; four norms
        # per layer (pre and post attention and FFN).
        "gemma-2-9b": ModelConfig(
            n_layer=42, d_model=3584, n_head=16, n_kv_head=8, d_head=256, d_ff=14_336,
            vocab_size=256_000, ffn="geglu", tie_embeddings=True, rope_theta=10_000.0,
            sliding_window=4096, layer_types=alternating(42, 2), n_norms=4, name="gemma-2-9b",
        ),
        # Mixtral-8x7B: 8 experts of width 14336, 2 per token, in every layer.
        "mixtral-8x7b-v0.1": ModelConfig(
            n_layer=32, d_model=4096, n_head=32, n_kv_head=8, d_ff=14_336, vocab_size=32_000,
            tie_embeddings=False, rope_theta=1_000_000.0, n_experts=8, n_experts_active=2,
            d_ff_expert=14_336, name="mixtral-8x7b-v0.1",
        ),
        # Qwen3-30B-A3B: 128 experts of width 768, 8 per token; qk-norm; d_head 128.
        "qwen3-30b-a3b": ModelConfig(
            n_layer=48, d_model=2048, n_head=32, n_kv_head=4, d_head=128, d_ff=6144,
            vocab_size=151_936, tie_embeddings=False, rope_theta=1_000_000.0, qk_norm=True,
            n_experts=128, n_experts_active=8, d_ff_expert=768, name="qwen3-30b-a3b",
        ),
        # DeepSeek-V2-Lite: multi-head latent attention (r = 512, rotary 64, no query
        # compression); first layer dense (10944), then 64 routed experts (6 per token) of
        # 1408 and 2 shared ones.
        "deepseek-v2-lite": ModelConfig(
            n_layer=27, d_model=2048, n_head=16, n_kv_head=16, d_head=192, d_ff=10_944,
            vocab_size=102_400, tie_embeddings=False, rope_theta=10_000.0, kv_lora_rank=512,
            qk_rope_dim=64, qk_nope_dim=128, v_head_dim=128, n_experts=64, n_experts_active=6,
            d_ff_expert=1408, d_ff_shared=2 * 1408, n_dense_layers=1, name="deepseek-v2-lite",
        ),
    }
    # Training presets for this project's corpus (BPE vocabulary of 2048; not published models).
    p["tiny"] = ModelConfig(n_layer=2, d_model=128, n_head=8, n_kv_head=2, d_head=16,
                            vocab_size=2048, rope_theta=10_000.0, name="tiny")
    for n_layer in (16, 24, 32):  # the valid Llama-3 GQA points; L=32 is the "1.2B" baseline
        cfg = paper_family(n_layer)
        p[cfg.name] = cfg
    for n_layer, d_model in PAPER_TABLE9_SHAPES:
        name = f"paper-t9-L{n_layer}-d{d_model}"
        p[name] = ModelConfig(
            n_layer=n_layer, d_model=d_model, n_head=d_model // 64, n_kv_head=d_model // 64,
            d_head=64, vocab_size=PAPER_VOCAB, name=name,
        )
    return p


PRESETS: dict[str, ModelConfig] = _build_presets()

# Published total parameter counts (embeddings included once when tied) with their source.
# `exact=False` pins only to the published rounding.
PUBLISHED_PARAMS: dict[str, dict[str, Any]] = {
    "llama-3.2-1b": {"total": 1_235_814_400, "exact": True,
                     "source": "meta-llama/Llama-3.2-1B safetensors metadata (1.24B)"},
    "llama-3.2-3b": {"total": 3_212_749_824, "exact": True,
                     "source": "meta-llama/Llama-3.2-3B safetensors metadata (3.21B)"},
    "llama-3.1-8b": {"total": 8_030_261_248, "exact": True,
                     "source": "meta-llama/Llama-3.1-8B safetensors metadata (8.03B)"},
    "llama-3.1-70b": {"total": 70_553_706_496, "exact": True,
                      "source": "meta-llama/Llama-3.1-70B safetensors metadata (70.6B)"},
    "mistral-7b-v0.1": {"total": 7_241_732_096, "exact": True,
                        "source": "mistralai/Mistral-7B-v0.1 safetensors metadata (7.24B)"},
    "qwen2.5-0.5b": {"total": 494_032_768, "exact": True, "non_embedding": 0.36e9,
                     "source": "Qwen/Qwen2.5-0.5B safetensors metadata; model card: 0.49B, "
                               "non-embedding 0.36B"},
    "qwen2.5-7b": {"total": 7_615_616_512, "exact": True, "non_embedding": 6.53e9,
                   "source": "Qwen/Qwen2.5-7B safetensors metadata; model card: 7.61B, "
                             "non-embedding 6.53B"},
    "qwen3-8b": {"total": 8.2e9, "exact": False, "non_embedding": 6.95e9,
                 "source": "Qwen/Qwen3-8B model card: 8.2B, non-embedding 6.95B"},
    "gemma-7b": {"total": 8_537_680_896, "exact": True,
                 "source": "google/gemma-7b safetensors metadata (8.54B)"},
    "gemma-2-9b": {"total": 9_241_705_984, "exact": True,
                   "source": "google/gemma-2-9b safetensors metadata (9.24B)"},
    "mixtral-8x7b-v0.1": {"total": 46_702_792_704, "exact": True, "active_total": 12.9e9,
                          "source": "mistralai/Mixtral-8x7B-v0.1 safetensors metadata "
                                    "(46.7B); Mistral AI's announcement: 12.9B active"},
    "qwen3-30b-a3b": {"total": 30_532_122_624, "exact": True,
                      "source": "Qwen/Qwen3-30B-A3B safetensors metadata; model card: 30.5B, "
                                "non-embedding 29.9B, 3.3B activated"},
    "deepseek-v2-lite": {"total": 15_706_484_224, "exact": True,
                         "source": "deepseek-ai/DeepSeek-V2-Lite safetensors metadata (15.7B); "
                                   "DeepSeek-V2 paper: 15.7B total, 2.4B activated"},
}


# How the published presets are named where they are published (the Hugging Face Hub), for
# what a reader sees: tables and chart legends show "Llama-3.2-1B", the CLI takes the key.
PRESET_TITLES: dict[str, str] = {
    "llama-3.2-1b": "Llama-3.2-1B", "llama-3.2-3b": "Llama-3.2-3B",
    "llama-3.1-8b": "Llama-3.1-8B", "llama-3.1-70b": "Llama-3.1-70B",
    "mistral-7b-v0.1": "Mistral-7B-v0.1", "qwen2.5-0.5b": "Qwen2.5-0.5B",
    "qwen2.5-7b": "Qwen2.5-7B", "qwen3-8b": "Qwen3-8B", "gemma-7b": "Gemma-7B",
    "gemma-2-9b": "Gemma-2-9B", "mixtral-8x7b-v0.1": "Mixtral-8x7B-v0.1",
    "qwen3-30b-a3b": "Qwen3-30B-A3B", "deepseek-v2-lite": "DeepSeek-V2-Lite",
}


def model_title(name: Any) -> str:
    """A model's name as a reader knows it: a published preset's Hub name ("llama-3.2-1b" ->
    "Llama-3.2-1B"), any other name unchanged."""
    return PRESET_TITLES.get(name, str(name)) if isinstance(name, str) else str(name)


def get_preset(name: str) -> ModelConfig:
    """Look up a preset by name (case-insensitive); unknown names suggest close matches."""
    if not isinstance(name, str):
        raise GQAError(f"model name must be a string, got {name!r}")
    by_lower = {k.lower(): v for k, v in PRESETS.items()}
    key = name.strip().lower()
    if key in by_lower:
        return by_lower[key]
    raise GQAError(
        f"unknown model {name!r}{did_you_mean(key, PRESETS)}; `gqa models` lists the presets"
    )
