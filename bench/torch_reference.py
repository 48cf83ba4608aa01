#!/usr/bin/python3
"""PyTorch baseline for `npm run bench`: the same BERT classifier and training step as bench/bench.ts.

Written in plain torch.nn so it runs on Debian's python3-torch without `transformers`, and so every op
is visibly the one our engine runs (post-LayerNorm, exact erf GELU, dropout 0.1 on hidden states and
attention probabilities, pooler + classifier, cross-entropy, AdamW with the Hugging Face decay rule,
global-norm clipping). Only side-by-side ratios with our engine mean anything on a noisy machine, so
bench.ts runs this interleaved with its own measurements.

    /usr/bin/python3 bench/torch_reference.py --threads 1 --steps 3
    /usr/bin/python3 bench/torch_reference.py --shape base --threads 2 --steps 1

Prints one JSON line.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {
    "reference": dict(vocab=8000, hidden=256, layers=4, heads=4, ffn=1024),
    "base": dict(vocab=30522, hidden=768, layers=12, heads=12, ffn=3072),
}
# bench.ts's batch layout per shape: (batch, seq, micro-batches). bert-base is split into micro-batches
# of one sequence because larger ones exhaust the wasm heap; the baseline does the same work.
LAYOUT = {"reference": (32, 64, 1), "base": (2, 128, 2)}
MAX_POSITIONS = 512
TYPE_VOCAB = 2
DROPOUT = 0.1
LN_EPS = 1e-12


class Layer(nn.Module):
    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=LN_EPS)
        self.intermediate = nn.Linear(hidden, ffn)
        self.output = nn.Linear(ffn, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=LN_EPS)

    def forward(self, x, mask):
        b, t, h = x.shape
        d = h // self.heads

        def split(y):
            return y.view(b, t, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + mask
        probs = F.dropout(F.softmax(scores, dim=-1), DROPOUT, self.training)
        context = (probs @ v).transpose(1, 2).reshape(b, t, h)
        x = self.attn_norm(x + F.dropout(self.attn_out(context), DROPOUT, self.training))
        ffn = self.output(F.gelu(self.intermediate(x)))  # approximate='none': exact erf, as BERT
        return self.out_norm(x + F.dropout(ffn, DROPOUT, self.training))


class Bert(nn.Module):
    def __init__(self, vocab, hidden, layers, heads, ffn, classes=2):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.position = nn.Embedding(MAX_POSITIONS, hidden)
        self.token_type = nn.Embedding(TYPE_VOCAB, hidden)
        self.embed_norm = nn.LayerNorm(hidden, eps=LN_EPS)
        self.layers = nn.ModuleList(Layer(hidden, heads, ffn) for _ in range(layers))
        self.pooler = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, classes)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def encode(self, ids, attention_mask):
        t = ids.shape[1]
        positions = torch.arange(t).unsqueeze(0)
        x = self.word(ids) + self.position(positions) + self.token_type(torch.zeros_like(ids))
        x = F.dropout(self.embed_norm(x), DROPOUT, self.training)
        # Same additive mask as src/model/layers.ts additiveMask: finite, so gradients stay finite.
        mask = ((1.0 - attention_mask.float()) * -1e9)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        return x

    def forward(self, ids, attention_mask):
        pooled = torch.tanh(self.pooler(self.encode(ids, attention_mask)[:, 0]))
        return self.classifier(F.dropout(pooled, DROPOUT, self.training))


def param_groups(model, weight_decay):
    # Hugging Face's rule, as src/train/adamw.ts defaultDecay: no decay on biases and LayerNorm weights.
    norms = {id(m.weight) for m in model.modules() if isinstance(m, nn.LayerNorm)}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith(".bias") or id(p) in norms else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="reference")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--seq", type=int)
    parser.add_argument("--micro", type=int, help="micro-batches per step (gradient accumulation)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    default_batch, default_seq, default_micro = LAYOUT[args.shape]
    batch = args.batch or default_batch
    seq = args.seq or default_seq
    micro = args.micro or default_micro
    if batch % micro:
        parser.error(f"--batch {batch} is not a multiple of --micro {micro}")
    micro_size = batch // micro
    shape = SHAPES[args.shape]

    model = Bert(**shape)
    ids = [torch.randint(5, shape["vocab"], (micro_size, seq)) for _ in range(micro)]
    labels = [torch.randint(0, 2, (micro_size,)) for _ in range(micro)]
    ones = torch.ones(micro_size, seq, dtype=torch.long)

    # Inference forward of one micro-batch, encoder only, as bench.ts times it (no autograd tape, no dropout).
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        model.encode(ids[0], ones)
    forward_seconds = time.perf_counter() - start

    model.train()
    optimizer = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)

    def step():
        optimizer.zero_grad(set_to_none=True)
        for i in range(micro):
            # Each micro-batch's mean loss weighted by its share, so the sum is the whole batch's mean.
            loss = F.cross_entropy(model(ids[i], ones), labels[i]) / micro
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()  # warm-up: allocator and optimizer state, as bench.ts's first step
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start

    print(
        json.dumps(
            {
                "engine": "pytorch",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "model": args.shape,
                "batch": batch,
                "seqLen": seq,
                "microBatches": micro,
                "steps": args.steps,
                "tokens_per_second": round(args.steps * batch * seq / seconds),
                "step_seconds": seconds / args.steps,
                "forward_seconds": forward_seconds,
                # ru_maxrss is in KiB on Linux.
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
