"""Compiled archlang modules against the timm model of the same name: same weights, same run.

For each model: timm's model is built, its weights randomized (tests/oracle.py) and its BatchNorm
statistics calibrated on a random batch; that state_dict is loaded strictly into the archlang
build (then both are fused, for *_fused), outputs are compared, and forward passes are timed
interleaved (ours then timm, the order flipped every repetition) in eval mode, fp32, under
torch.inference_mode(). Peak memory per forward comes from the torch profiler's allocator
events. A second table times the compiler itself (IR + shapes + costs, and codegen).

    python benchmarks/bench_vs_timm.py                      # default set, 1.5-3 minutes on 2 idle cores
    python benchmarks/bench_vs_timm.py --quick              # smoke run: 5 reps, batch 2
    python benchmarks/bench_vs_timm.py --models deit_small_patch16_224 repvit_m1_1_fused --json out.json

Timings are never asserted anywhere; this script only reports them.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the oracle's variant table and weight randomizer

import torch  # noqa: E402
from oracle import FASTVIT, VARIANTS, randomize, spec  # noqa: E402

import archlang  # noqa: E402

DEFAULT_MODELS = [
    "convnext_tiny",
    "convnextv2_nano",
    "deit_small_patch16_224",
    "deit_tiny_distilled_patch16_224",
    "repvit_m1_1",
    "repvit_m1_1_fused",
    "maxvit_tiny_tf_224",
    "fastvit_t8",
    "fastvit_t8_fused",
]
FUSED_SUFFIX = "_fused"
COMPILE_TARGETS = [("convnext", "large", "convnext_large"), ("deit", "base", "deit_base_patch16_224")]
TOLERANCE = 1e-4
MIB = 2 ** 20


# ---------------------------------------------------------------------------------------------
# small statistics helpers


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    """(q1, median, q3) with linear interpolation between order statistics."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0], s[0], s[0]
    q1, med, q3 = statistics.quantiles(s, n=4, method="inclusive")
    return q1, med, q3


def summary(xs_s: list[float]) -> dict:
    """Latency summary in milliseconds from a list of seconds."""
    ms = [x * 1e3 for x in xs_s]
    q1, med, q3 = quartiles(ms)
    return {"median_ms": med, "q1_ms": q1, "q3_ms": q3, "iqr_ms": q3 - q1, "min_ms": min(ms), "samples_ms": ms}


# ---------------------------------------------------------------------------------------------
# the machine


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info(threads: int) -> dict:
    import timm

    return {
        "cpu": cpu_name(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "archlang": archlang.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "timm_fused_attn": bool(timm.layers.use_fused_attn()),
    }


# ---------------------------------------------------------------------------------------------
# peak memory of one forward, from the profiler's allocator events


@contextlib.contextmanager
def quiet_stderr():
    """Silence native stderr (the profiler backend logs to fd 2); Python errors still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_forward_bytes(model, x) -> int | None:
    """Highest number of bytes held by torch's CPU allocator during one forward, above what was
    held when it started (weights and the input are therefore excluded: activations, temporaries,
    the output). Read from the '[memory]' events of a profiler trace; None if there are none."""
    from torch.profiler import ProfilerActivity, profile

    fd, path = tempfile.mkstemp(suffix=".json", prefix="archlang-bench-")
    os.close(fd)
    try:
        with quiet_stderr():
            with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
                out = model(x)
            del out
            prof.export_chrome_trace(path)
        with open(path) as f:
            trace = json.load(f)
    finally:
        os.unlink(path)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    mem = sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: (e.get("ts", 0),
                                                                                     e["args"].get("Ev Idx", 0)))
    mem = [e["args"] for e in mem if e["args"].get("Device Type", 0) == 0]  # CPU allocator only
    if not mem:
        return None
    start = mem[0]["Total Allocated"] - mem[0]["Bytes"]  # held before the first event of the forward
    return int(max(a["Total Allocated"] for a in mem) - start)


def tensor_bytes(model) -> int:
    """Bytes of every parameter and buffer (the weights a module holds)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


# ---------------------------------------------------------------------------------------------
# one model pair


def lookup(name: str) -> tuple[str, str, str, bool]:
    fused = name.endswith(FUSED_SUFFIX)
    base = name[: -len(FUSED_SUFFIX)] if fused else name
    rows = list(VARIANTS) + [("fastvit", variant, timm_name, o) for variant, timm_name, o in FASTVIT]
    for family, variant, timm_name, _ in rows:
        if base in (timm_name, f"{family}:{variant}"):
            return family, variant, timm_name, fused
    known = ", ".join(t for _, _, t, _ in rows)
    raise SystemExit(f"unknown model {name!r}; choose from: {known} (append {FUSED_SUFFIX} for the deploy form)")


def build_pair(name: str, size: int, seed: int):
    """(ours, timm) with the same randomized weights, both in eval mode."""
    import timm
    from timm.utils.model import reparameterize_model

    family, variant, timm_name, fused = lookup(name)
    overrides = {"img_size": size} if family == "deit" and size != 224 else {}
    ref = timm.create_model(timm_name, pretrained=False, **overrides).eval()
    state = randomize(ref, seed=seed, calibrate=(3, size, size))  # BN statistics as training leaves them
    t0 = time.perf_counter()
    shape = {"input_size": (3, size, size)} if size != 224 else {}  # the IR's shape check
    ours = archlang.build(spec(family), variant, overrides or None, **shape)
    build_s = time.perf_counter() - t0
    archlang.load_timm(ours, state)
    if fused:
        ours = archlang.fuse(ours).eval()
        ref = reparameterize_model(copy.deepcopy(ref)).eval()
    return ours, ref, build_s


def time_pair(ours, ref, x, reps: int, warmup: int) -> tuple[list[float], list[float]]:
    """Interleaved timings: rep i runs ours then timm for even i, timm then ours for odd i."""
    models = {"ours": ours, "timm": ref}
    times = {"ours": [], "timm": []}
    for i in range(warmup):
        for key in (("ours", "timm") if i % 2 == 0 else ("timm", "ours")):
            models[key](x)
    gc.collect()
    gc.disable()
    try:
        for i in range(reps):
            for key in (("ours", "timm") if i % 2 == 0 else ("timm", "ours")):
                t0 = time.perf_counter()
                models[key](x)
                times[key].append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return times["ours"], times["timm"]


def bench_model(name: str, args) -> dict:
    print(f"  {name} ...", end="", file=sys.stderr, flush=True)
    t_start = time.perf_counter()
    ours, ref, build_s = build_pair(name, args.size, args.seed)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(args.seed + 1))
    row = {"model": name, "batch": args.batch, "size": args.size}
    with torch.inference_mode():
        out_ours, out_ref = ours(x), ref(x)  # the first warm-up round (ours, then timm)
        diff = (out_ours - out_ref).abs().max().item()
        scale = out_ref.abs().max().item()
        del out_ours, out_ref
        rel = diff / max(1.0, scale)  # the tests' rule: absolute for O(1) logits, relative above
        row.update(max_abs_diff=diff, max_abs_logit=scale, scaled_diff=rel, match=rel <= TOLERANCE)
        for key, model in (("ours", ours), ("timm", ref)):
            row[key] = {"params": sum(p.numel() for p in model.parameters()), "weight_bytes": tensor_bytes(model)}
        row["ours"]["build_s"] = build_s
        if not row["match"]:
            print(f" outputs differ: max |Δ| = {diff:.3g} on logits of size {scale:.3g}; not timed",
                  file=sys.stderr, flush=True)
            row["wall_s"] = time.perf_counter() - t_start
            return row
        t_ours, t_ref = time_pair(ours, ref, x, args.reps, max(0, args.warmup - 1))
        for key, model in (("ours", ours), ("timm", ref)):
            row[key]["peak_forward_bytes"] = None if args.no_memory else peak_forward_bytes(model, x)
    row["ours"].update(summary(t_ours))
    row["timm"].update(summary(t_ref))
    row["ratio"] = row["ours"]["median_ms"] / row["timm"]["median_ms"]
    paired = [a / b for a, b in zip(t_ours, t_ref)]
    pq1, pmed, pq3 = quartiles(paired)
    row["paired_ratio"] = {"median": pmed, "q1": pq1, "q3": pq3, "samples": paired}
    row["wall_s"] = time.perf_counter() - t_start
    print(f" {row['wall_s']:.0f} s", file=sys.stderr, flush=True)
    return row


# ---------------------------------------------------------------------------------------------
# compiler speed (no torch model is built)


def bench_compiler(reps: int) -> list[dict]:
    print("  compiler ...", file=sys.stderr, flush=True)
    rows = []
    for family, variant, timm_name in COMPILE_TARGETS:
        path = spec(family)
        t0 = time.perf_counter()
        first = archlang.stats(path, variant)  # the first call also builds the (cached) Lark parser
        first_s = time.perf_counter() - t0
        stats_s, codegen_s = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            archlang.stats(path, variant)
            stats_s.append(time.perf_counter() - t0)
            compiled = archlang.compile_spec(path, variant)
            t0 = time.perf_counter()
            source = compiled.source  # cached_property: a fresh Compiled emits again
            codegen_s.append(time.perf_counter() - t0)
        rows.append({
            "model": timm_name, "spec": f"specs/{family}.arch", "variant": variant,
            "ir_nodes": len(compiled.graph), "params": first["params"], "macs": first["macs"],
            "source_lines": source.count("\n") + 1,
            "first_stats_ms": first_s * 1e3,
            "stats": summary(stats_s), "codegen": summary(codegen_s),
        })
    return rows


# ---------------------------------------------------------------------------------------------
# output


def fmt_mib(b) -> str:
    return "n/a" if b is None else f"{b / MIB:.1f}"


def markdown(info: dict, args, rows: list[dict], compiler_rows: list[dict]) -> str:
    out = [
        f"**Machine:** {info['cpu']} ({info['logical_cpus']} logical CPUs), torch {info['torch']}, "
        f"timm {info['timm']}, archlang {info['archlang']}, Python {info['python']}, "
        f"torch.set_num_threads({info['threads']}), timm fused attention "
        f"{'on' if info['timm_fused_attn'] else 'off'}",
        "",
        f"**Forward latency**, batch {args.batch}, {args.size}x{args.size}, fp32, eval, inference_mode; "
        "same weights (randomized as in tests/oracle.py, BatchNorm statistics calibrated); "
        f"interleaved, median of {args.reps} (after {args.warmup} warm-up), "
        "IQR = q1–q3 in ms.",
        "",
    ]
    mem_head = ("peak MiB ours", "peak MiB timm") if not args.no_memory else ()
    head = ("model", "ours ms", "ours IQR", "timm ms", "timm IQR", "ours/timm", "paired ratio IQR",
            "max abs Δ", *mem_head, "weights MiB")
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
    for r in rows:
        if not r["match"]:
            cells = [f"`{r['model']}`", *["—"] * 6, f"**MISMATCH** {r['max_abs_diff']:.1e}",
                     *["—"] * len(mem_head), fmt_mib(r["ours"]["weight_bytes"])]
            out.append("| " + " | ".join(cells) + " |")
            continue
        o, t, p = r["ours"], r["timm"], r["paired_ratio"]
        cells = [
            f"`{r['model']}`",
            f"{o['median_ms']:.1f}", f"{o['q1_ms']:.1f}–{o['q3_ms']:.1f}",
            f"{t['median_ms']:.1f}", f"{t['q1_ms']:.1f}–{t['q3_ms']:.1f}",
            f"{r['ratio']:.3f}", f"{p['q1']:.3f}–{p['q3']:.3f}",
            f"{r['max_abs_diff']:.1e}" + (f" ({r['scaled_diff']:.1e} rel.)" if r["max_abs_logit"] > 1
                                           and r["max_abs_diff"] > 0 else ""),
        ]
        if not args.no_memory:
            cells += [fmt_mib(o["peak_forward_bytes"]), fmt_mib(t["peak_forward_bytes"])]
        w = fmt_mib(o["weight_bytes"])
        cells.append(w if o["weight_bytes"] == t["weight_bytes"] else f"{w} / {fmt_mib(t['weight_bytes'])}")
        out.append("| " + " | ".join(cells) + " |")
    out += [
        "",
        "ours/timm = median(ours) / median(timm): below 1 means the compiled module is faster. "
        "Paired ratio IQR: quartiles of the per-repetition ratios; if it contains 1.0 the two are "
        "within noise. max abs Δ: largest output difference on the benchmark input, checked to be "
        f"<= {TOLERANCE:g} before timing (relative to the largest logit when that exceeds 1, shown as rel., "
        "the rule of tests/test_fusion.py). "
        + ("Peak MiB: highest bytes held by torch's CPU allocator during one forward above what was "
           "held before it (activations, temporaries, output; weights and input excluded), from "
           "torch.profiler(profile_memory=True). " if not args.no_memory else "")
        + "Weights MiB: parameters + buffers of each module (one number when equal).",
    ]
    if compiler_rows:
        out += [
            "",
            f"**Compiler** (no torch model built), median of {args.compile_reps} after one untimed call; "
            "`stats` = parse + elaborate + check-shapes + count-flops, `codegen` = `compile_spec(...).source`.",
            "",
            "| model | spec:variant | IR nodes | params | GMACs | stats ms | codegen ms | source lines |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c in compiler_rows:
            out.append(
                f"| `{c['model']}` | `{c['spec']}:{c['variant']}` | {c['ir_nodes']:,} | {c['params']:,} | "
                f"{c['macs'] / 1e9:.2f} | {c['stats']['median_ms']:.1f} | {c['codegen']['median_ms']:.1f} | "
                f"{c['source_lines']:,} |"
            )
        out += ["", f"First `stats` call in the process (includes building the Lark parser once): "
                f"{compiler_rows[0]['first_stats_ms']:.0f} ms."]
    return "\n".join(out)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", metavar="NAME",
                    help="timm model names (append _fused for the deploy form); commas also separate. "
                         f"Default: {' '.join(DEFAULT_MODELS)}")
    ap.add_argument("--batch", type=int, help="batch size (default 8; 2 with --quick)")
    ap.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    ap.add_argument("--reps", type=int, help="timed repetitions per model (default 15; 5 with --quick)")
    ap.add_argument("--warmup", type=int, help="untimed forwards of each model first (default 3; 1 with --quick)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--compile-reps", type=int, help="repetitions for the compiler table (default 10; 3 with --quick)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random weights and input (default 0)")
    ap.add_argument("--quick", action="store_true", help="smoke run: reps 5, batch 2, warm-up 1")
    ap.add_argument("--timm-no-fused-attn", action="store_true",
                    help="build timm's attention without F.scaled_dot_product_attention (timm's default is to use it)")
    ap.add_argument("--no-memory", action="store_true", help="skip the profiler memory measurement")
    ap.add_argument("--no-compiler", action="store_true", help="skip the compiler-speed table")
    ap.add_argument("--json", metavar="PATH", help="also write the raw numbers (every sample) as JSON")
    args = ap.parse_args(argv)
    quick = args.quick
    args.batch = args.batch or (2 if quick else 8)
    args.reps = args.reps or (5 if quick else 15)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    args.compile_reps = args.compile_reps or (3 if quick else 10)
    names = [n for item in (args.models or DEFAULT_MODELS) for n in item.split(",") if n]
    for n in names:
        lookup(n)  # fail before any work on a misspelt name
    args.models = names
    if min(args.batch, args.reps, args.size, args.threads, args.compile_reps) < 1 or args.warmup < 0:
        ap.error("--batch, --reps, --size, --threads and --compile-reps must be positive, --warmup >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.timm_no_fused_attn:
        import timm.layers

        timm.layers.set_fused_attn(False)  # read when timm builds its Attention modules
    torch.manual_seed(args.seed)
    info = machine_info(args.threads)
    t_start = time.perf_counter()
    # the compiler first, so that its first call really is the first in the process
    compiler_rows = [] if args.no_compiler else bench_compiler(args.compile_reps)
    rows = [bench_model(n, args) for n in args.models]
    total_s = time.perf_counter() - t_start
    print(markdown(info, args, rows, compiler_rows), flush=True)
    if args.json:
        settings = {k: getattr(args, k) for k in ("models", "batch", "size", "reps", "warmup", "threads",
                                                  "compile_reps", "seed", "quick", "no_memory",
                                                  "timm_no_fused_attn")}
        payload = {"machine": info, "settings": settings, "tolerance": TOLERANCE, "models": rows,
                   "compiler": compiler_rows, "total_s": total_s}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"  done in {total_s:.0f} s", file=sys.stderr)
    return 0 if all(r["match"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
