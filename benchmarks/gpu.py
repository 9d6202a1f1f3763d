"""GPU readiness: one prepared script for a lent GPU, runnable unchanged on CPU at toy size.

    python -m benchmarks.gpu --out DIR          # on the GPU (about 5 minutes on an H200)
    python -m benchmarks.gpu --toy --out DIR    # anywhere, under a minute (tests run this)

It measures, in one process: the matmul peak (bf16 on GPU, fp32 on CPU) and the copy
bandwidth of device memory; the training MFU of a 75M-parameter (non-embedding) model at
T = 4K (eager and torch.compile); and, for the recipe's equal-loss pair at long context --
the paper's Llama-3 GQA point (32, 8), L = 32, d = 2048, against the cost-optimal (8, 1) of
the same fitted loss -- the decode latency beside the memory-bandwidth bound the cost model
predicts (weights plus KV cache read once per decoded token) and the throughput of a chunked
prefill beside its FLOPs (cost.prefill_flops). Results: DIR/gpu-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from gqa_lib import ModelConfig, cost
from gqa_lib.io import atomic_write_text
from gqa_lib.train.model import GQATransformer, KVCache

from .common import machine, matmul_peak, timeit
from .steps import model_flops_per_token, step_time

DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float32: "fp32"}


def copy_bandwidth(device: torch.device, n_bytes: int) -> float:
    """Bytes/s of a device-to-device copy (read + write counted)."""
    x = torch.empty(n_bytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    y = torch.empty_like(x)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    y.copy_(x)
    t = timeit(lambda: y.copy_(x), repeat=5, number=5, sync=sync)
    return 2 * n_bytes / t["best_s"]


def equal_loss_pair(toy: bool) -> tuple[ModelConfig, ModelConfig, dict[str, Any]]:
    """(baseline, optimum): the paper's (32, 8) point and the recipe's (8, 1) of equal loss
    at T = 128K (joint loss model fitted to the paper's digitised losses), rounded to whole
    layers on the d = 64 L family. Toy mode keeps the two head layouts, (32, 8) and (8, 1),
    in miniature (8x shallower and narrower, d_head 8); the toy pair is not of equal loss."""
    from gqa_lib.fit.recipe import optimize
    from gqa_lib.evidence.paper import joint_model

    rec = optimize(joint_model(), 2.615, 131072, baseline="llama3")
    row = rec.candidates[(rec.candidates["n_head"] == 8) & (rec.candidates["n_kv_head"] == 1)]
    L_opt = int(round(float(row["n_layer"].iloc[0])))
    base = ModelConfig(n_layer=32, d_model=2048, n_head=32, n_kv_head=8, d_head=64,
                       vocab_size=50_304, name="llama3-gqa-(32,8)")
    opt = ModelConfig(n_layer=L_opt, d_model=64 * L_opt, n_head=8, n_kv_head=1, d_head=64,
                      vocab_size=50_304, name="cost-optimal-(8,1)")
    info = {"recipe_n_layer_continuous": float(row["n_layer"].iloc[0]), "target_loss": 2.615}
    if toy:  # the same two head layouts in miniature: 8x shallower and narrower, d_head 8
        L = max(2, L_opt // 8)
        base = ModelConfig(n_layer=4, d_model=256, n_head=32, n_kv_head=8, d_head=8,
                           vocab_size=2048, name="toy-(32,8)")
        opt = ModelConfig(n_layer=L, d_model=64 * L, n_head=8, n_kv_head=1, d_head=8,
                          vocab_size=2048, name="toy-(8,1)")
    return base, opt, info


@torch.no_grad()
def decode_latency(cfg: ModelConfig, T: int, device: torch.device, dtype: torch.dtype,
                   batch: int = 1, tokens: int = 32) -> float:
    """Seconds per decoded token with T tokens already in the KV cache (the cache is filled
    with random values: decode cost does not depend on them)."""
    torch.manual_seed(0)
    model = GQATransformer(cfg).to(device=device, dtype=dtype).eval()
    cache = KVCache.empty(cfg, batch, T + tokens + 4, dtype=dtype, device=device)
    cache.k.normal_()
    cache.v.normal_()
    x = torch.zeros(batch, 1, dtype=torch.long, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        cache.length = T
        for _ in range(tokens):
            model(x, cache=cache)

    step()  # warm-up
    return timeit(step, repeat=3, sync=sync)["median_s"] / tokens


@torch.no_grad()
def prefill_seconds(cfg: ModelConfig, T: int, device: torch.device, dtype: torch.dtype,
                    chunk: int) -> float:
    """Seconds to prefill a prompt of T tokens into an empty KV cache, ``chunk`` tokens per
    forward pass (chunked prefill: the logits of one pass never exceed chunk x vocab)."""
    torch.manual_seed(0)
    model = GQATransformer(cfg).to(device=device, dtype=dtype).eval()
    cache = KVCache.empty(cfg, 1, T, dtype=dtype, device=device)
    x = torch.randint(0, cfg.vocab_size, (1, T), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run():
        cache.length = 0
        for i in range(0, T, chunk):
            model(x[:, i:i + chunk], cache=cache)

    run()  # warm-up
    return timeit(run, repeat=2, sync=sync)["median_s"]


def paper_table5_speedup(metric: str = "inference_throughput") -> float:
    """The paper's Table 5 ratio of the cost-optimal (8, 1) model's throughput at 128K to the
    Llama-3 GQA (32, 8) model's (data/paper/table5.csv)."""
    from gqa_lib.evidence.paper import _read

    row = _read("table5.csv").set_index("metric").loc[metric]
    return float(row["cost_optimal_8_1"]) / float(row["llama3_gqa_32_8"])


def bandwidth_bound(cfg: ModelConfig, T: int, dtype: str, bandwidth: float, batch: int = 1
                    ) -> float:
    """Seconds per token if decoding only had to read every weight (embedding matrix included:
    the LM head reads it) and the whole KV cache once: the cost model's memory term."""
    weights = cost.inference_memory_bytes(cfg, T, dtype=dtype, batch=batch,
                                          include_embeddings=True)
    # `bandwidth` counts a copy's read and write traffic; decoding only reads
    return float(weights) / bandwidth


def run(toy: bool, out_dir: Path) -> dict[str, Any]:
    device = torch.device("cuda" if torch.cuda.is_available() and not toy else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    t0 = time.perf_counter()
    res: dict[str, Any] = {"machine": machine(), "toy": toy, "device": str(device),
                           "dtype": DTYPE_NAMES[dtype]}
    res["matmul_peak_flops"] = matmul_peak(device, dtype, n=8192 if device.type == "cuda" else 512)
    res["copy_bandwidth_bytes_per_s"] = copy_bandwidth(device, 2**30 if device.type == "cuda"
                                                       else 2**24)
    print(f"peak {res['matmul_peak_flops'] / 1e12:.1f} TFLOP/s ({res['dtype']}), copy "
          f"bandwidth {res['copy_bandwidth_bytes_per_s'] / 1e9:.0f} GB/s")

    # training MFU
    if toy:
        train_cfg, T, batch_tokens = ModelConfig(n_layer=2, d_model=128, n_head=8, n_kv_head=2,
                                                 d_head=16, vocab_size=2048), 256, 2048
    else:
        train_cfg, T, batch_tokens = ModelConfig(n_layer=12, d_model=768, n_head=12,
                                                 n_kv_head=4, d_head=64, vocab_size=2048), \
            4096, 65536
    train_rows = []
    for impl in ("gqa_lib", "compiled"):
        try:
            s = step_time(train_cfg, T, batch_tokens, impl, 3 if toy else 10, device)
        except Exception as e:  # report, do not die: the rest of the script still runs
            train_rows.append({"impl": impl, "error": f"{type(e).__name__}: {e}"[:300]})
            continue
        flops = model_flops_per_token(train_cfg, T) * batch_tokens
        train_rows.append({"impl": impl, "step_s": s, "tokens_per_s": batch_tokens / s,
                           "mfu": flops / s / res["matmul_peak_flops"]})
        print(f"train {impl}: {batch_tokens / s:,.0f} tok/s, MFU {train_rows[-1]['mfu']:.1%}")
    res["training"] = {"config": train_cfg.to_dict(), "context": T, "batch_tokens": batch_tokens,
                       "params_non_embedding": int(cost.params_non_embedding(train_cfg)),
                       "rows": train_rows}

    # decode: equal-loss pair at long context
    base, opt, info = equal_loss_pair(toy)
    contexts = [512, 2048] if toy else [8192, 32768, 131072]
    rows = []
    for T in contexts:
        for cfg in (base, opt):
            s = decode_latency(cfg, T, device, dtype, tokens=8 if toy else 32)
            bound = bandwidth_bound(cfg, T, res["dtype"], res["copy_bandwidth_bytes_per_s"])
            pre = prefill_seconds(cfg, T, device, dtype, chunk=256 if toy else 16384)
            pre_flops = float(cost.prefill_flops(cfg, T, lm_head=True))
            rows.append({"model": cfg.name, "n_head": cfg.n_head, "n_kv_head": cfg.n_kv_head,
                         "n_layer": cfg.n_layer, "d_model": cfg.d_model, "context": T,
                         "params_total": int(cost.params_total(cfg)),
                         "kv_cache_bytes": int(cost.kv_cache_bytes(cfg, T, dtype=res["dtype"])),
                         "s_per_token": s, "tokens_per_s": 1 / s, "bound_s_per_token": bound,
                         "measured_over_bound": s / bound,
                         "prefill_s": pre, "prefill_tokens_per_s": T / pre,
                         "prefill_flops": pre_flops,
                         "prefill_mfu": pre_flops / pre / res["matmul_peak_flops"]})
            print(f"decode {cfg.name} T={T}: {s * 1e3:.2f} ms/token "
                  f"(bandwidth bound {bound * 1e3:.2f} ms); prefill {T / pre:,.0f} tokens/s "
                  f"(MFU {rows[-1]['prefill_mfu']:.0%})")
        b, o = rows[-2], rows[-1]
        rows[-1]["speedup_measured"] = b["s_per_token"] / o["s_per_token"]
        rows[-1]["speedup_bound"] = b["bound_s_per_token"] / o["bound_s_per_token"]
        rows[-1]["prefill_speedup_measured"] = b["prefill_s"] / o["prefill_s"]
        rows[-1]["prefill_speedup_flops"] = b["prefill_flops"] / o["prefill_flops"]
    res["decode"] = {"pair": [base.to_dict(), opt.to_dict()], "recipe": info, "rows": rows,
                     "paper_table5_inference_speedup": paper_table5_speedup()}
    res["wall_s"] = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = "toy-cpu" if toy else (res["machine"].get("gpu", "cpu").lower().replace(" ", "-"))
    path = out_dir / f"gpu-{slug}.json"
    atomic_write_text(path, json.dumps(res, indent=2) + "\n")
    print(f"wrote {path} in {res['wall_s']:.0f} s")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    p.add_argument("--toy", action="store_true", help="toy sizes on the CPU (for tests)")
    p.add_argument("--out", default="data/bench", help="output folder")
    args = p.parse_args(argv)
    run(args.toy, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
