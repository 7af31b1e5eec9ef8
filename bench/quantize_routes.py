"""int8 on the CPU, route against route: which one QUANTIZE=int8 should use, in one run.

    python -m bench.quantize_routes                # torch.ao's routes, against float32
    pip install --target /tmp/torchao torchao --no-deps
    PYTHONPATH=/tmp/torchao python -m bench.quantize_routes --record   # torchao's too

Four of OPT-2.7b's decoder layers' Linear layers (q, k, v, out: 2560 x 2560; fc1: 2560 x
10240; fc2: 10240 x 2560; random weights), run on what decoding feeds them (1 and 4 tokens:
one picture, and a batch of 4, a token at a time) and on a prompt's worth (64 tokens at once).
Each route quantizes a copy of the same float32 layers:

- ``torch.ao per tensor``: ``torch.ao.quantization.quantize_dynamic``, one scale per layer;
- ``torch.ao per channel``: the same with ``per_channel_dynamic_qconfig`` (what the engine uses);
- ``torchao int8 dyn.``: torchao's ``Int8DynamicActivationInt8WeightConfig`` (int8 activations);
- ``torchao int8 weights``: torchao's ``Int8WeightOnlyConfig`` (int8 weights, float32 maths).

Reported: milliseconds per call (the fastest of --repeats), speed against float32, and the
error against float32's output (relative, root mean square). torchao's rows appear only where
it can be imported; the project doesn't depend on it.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings

import torch

from bench.common import header, publish

HIDDEN, FFN = 2560, 10240  # OPT-2.7b


class Layer(torch.nn.Module):
    """A decoder layer's Linear layers, in the order a token goes through them."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.out = (torch.nn.Linear(HIDDEN, HIDDEN) for _ in range(4))
        self.fc1, self.fc2 = torch.nn.Linear(HIDDEN, FFN), torch.nn.Linear(FFN, HIDDEN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.out(self.q(x) + self.k(x) + self.v(x))
        return x + self.fc2(torch.relu(self.fc1(x)))


def torch_ao(per_channel: bool):
    def quantize(model: torch.nn.Module) -> torch.nn.Module:
        from torch.ao.quantization import (
            default_dynamic_qconfig,
            per_channel_dynamic_qconfig,
            quantize_dynamic,
        )

        qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return quantize_dynamic(model, {torch.nn.Linear: qconfig}, dtype=torch.qint8, inplace=True)

    return quantize


def torchao_route(config_name: str):
    def quantize(model: torch.nn.Module) -> torch.nn.Module:
        import torchao.quantization as tq

        config = getattr(tq, config_name)()
        tq.quantize_(model, config)
        return model

    return quantize


def routes() -> dict:
    found = {
        "float32": lambda m: m,
        "torch.ao per tensor": torch_ao(per_channel=False),
        "torch.ao per channel": torch_ao(per_channel=True),
    }
    try:
        import torchao.quantization  # noqa: F401
    except Exception as exc:  # any reason it can't be used is a reason to skip
        print(f"torchao left out: {type(exc).__name__}: {exc}", file=sys.stderr)
    else:
        found["torchao int8 dyn."] = torchao_route("Int8DynamicActivationInt8WeightConfig")
        found["torchao int8 weights"] = torchao_route("Int8WeightOnlyConfig")
    return found


def timed(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> tuple[float, torch.Tensor]:
    with torch.inference_mode():
        out = model(x)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            out = model(x)
            best = min(best, time.perf_counter() - started)
    return best, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4, help="decoder layers' worth of Linear layers")
    parser.add_argument("--tokens", default="1,4,64", help="tokens per call, comma-separated")
    parser.add_argument("--repeats", type=int, default=10, help="calls per measurement; the fastest is kept")
    parser.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    args = parser.parse_args()
    tokens = [int(t) for t in args.tokens.split(",")]
    torch.manual_seed(0)
    base = torch.nn.Sequential(*(Layer() for _ in range(args.layers))).eval()
    inputs = {n: torch.randn(n, HIDDEN) * 0.1 for n in tokens}
    results: dict[str, dict[int, tuple[float, float]]] = {}
    reference: dict[int, torch.Tensor] = {}
    for name, quantize in routes().items():
        try:
            model = quantize(copy.deepcopy(base))
        except Exception as exc:
            print(f"{name} left out: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        results[name] = {}
        for n, x in inputs.items():
            seconds, out = timed(model, x, args.repeats)
            if name == "float32":
                reference[n] = out
            error = ((out - reference[n]).pow(2).mean() / reference[n].pow(2).mean()).sqrt().item()
            results[name][n] = (seconds, error)
        print(name, {n: f"{s * 1e3:.1f} ms" for n, (s, _) in results[name].items()}, flush=True)
        del model
    plain = results["float32"]
    table = [
        "### int8 on the CPU: which route",
        "",
        *header(),
        f"- what: {args.layers} of OPT-2.7b's decoder layers' Linear layers, random weights; "
        f"{', '.join(map(str, tokens))} tokens per call; torch threads {torch.get_num_threads()}",
        "",
        "| route | " + " | ".join(f"{n} tokens" for n in tokens) + " | error against float32 |",
        "|---|" + "---:|" * (len(tokens) + 1),
    ]
    for name, row in results.items():
        cells = [f"{row[n][0] * 1e3:.1f} ms ({plain[n][0] / row[n][0]:.2f}x)" for n in tokens]
        table.append(f"| {name} | " + " | ".join(cells) + f" | {row[tokens[0]][1]:.2%} |")
    table.append("")
    publish(table, keep=args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
