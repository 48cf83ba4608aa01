#!/usr/bin/python3
"""Proxy experiment behind `healing pretrain --position-init`: does the start of the position embeddings
decide whether a small post-LayerNorm BERT leaves the masked-LM plateau?

Our 6x256 run with Hugging Face's N(0, 0.02) position embeddings (data/pretraining/healing-bert-small-v2,
700 steps, 11.5M tokens) sat at held-out accuracy 14.2 %: [MASK] positions got the unigram guess and
attention stayed uniform (no head attended to its neighbours). This trains a 2-layer BERT of the same
width in plain PyTorch on the run's own packed ids with both starts and prints, every 1/6 of the run, the
held-out loss, the accuracy at [MASK] positions and the mean attention of layer 0 to the previous and the
next token (uniform = 1/seq). Measured (600 steps, batch 32 x 128, lr 5e-4): normal 6.245 held-out loss,
attention to neighbours 0.008 (uniform); sinusoidal x 0.03 6.162 and 0.017, rising.

    /usr/bin/python3 scripts/position_init_probe.py --ids data/pretraining/<run> --pos normal
    /usr/bin/python3 scripts/position_init_probe.py --ids data/pretraining/<run> --pos sin0.03

--pos sinS scales the sine/cosine table by S (0.03 ~ the rms of N(0, 0.02), what --position-init uses).
Needs a run directory with train-ids.bin and heldout-ids.bin (`healing pretrain` writes them).
"""
import json, math, sys, time, argparse
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
ap = argparse.ArgumentParser()
ap.add_argument('--layers', type=int, default=2); ap.add_argument('--hidden', type=int, default=256)
ap.add_argument('--steps', type=int, default=300); ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--seq', type=int, default=128); ap.add_argument('--lr', type=float, default=5e-4)
ap.add_argument('--pos', default='normal'); ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--ids', required=True, help='pretraining run directory with train-ids.bin, heldout-ids.bin')
a = ap.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
V=8192; H=a.hidden; nh=H//64; T=a.seq
b = open(a.ids + '/train-ids.bin', 'rb').read()
data = torch.tensor(np.frombuffer(b, dtype=np.int32).reshape(-1,128).copy()).long()
hb = open(a.ids + '/heldout-ids.bin', 'rb').read()
held = torch.tensor(np.frombuffer(hb, dtype=np.int32).reshape(-1,128).copy()).long()[:64]
class Layer(nn.Module):
    def __init__(s):
        super().__init__(); s.qkv = nn.Linear(H, 3*H); s.o = nn.Linear(H,H); s.n1 = nn.LayerNorm(H, eps=1e-12); s.i = nn.Linear(H,4*H); s.out = nn.Linear(4*H,H); s.n2 = nn.LayerNorm(H, eps=1e-12)
    def forward(s, x):
        B,T,_ = x.shape
        q,k,v = s.qkv(x).view(B,T,3,nh,64).permute(2,0,3,1,4)
        att = torch.softmax(q @ k.transpose(-1,-2) / 8, -1)
        c = (att @ v).transpose(1,2).reshape(B,T,H)
        x = s.n1(x + s.o(c)); return s.n2(x + s.out(F.gelu(s.i(x)))), att
class M(nn.Module):
    def __init__(s):
        super().__init__(); s.w = nn.Embedding(V,H); s.p = nn.Embedding(512,H); s.n = nn.LayerNorm(H, eps=1e-12)
        s.layers = nn.ModuleList(Layer() for _ in range(a.layers)); s.t = nn.Linear(H,H); s.tn = nn.LayerNorm(H, eps=1e-12); s.bias = nn.Parameter(torch.zeros(V))
        for m in s.modules():
            if isinstance(m,(nn.Linear,nn.Embedding)): nn.init.normal_(m.weight, std=0.02)
            if isinstance(m,nn.Linear): nn.init.zeros_(m.bias)
        if a.pos.startswith('sin'):
            scale = float(a.pos[3:] or 0.02)
            pos = torch.arange(512).float()[:,None]; i = torch.arange(0,H,2).float()
            ang = pos / (10000 ** (i/H)); pe = torch.zeros(512,H); pe[:,0::2]=torch.sin(ang); pe[:,1::2]=torch.cos(ang)
            with torch.no_grad(): s.p.weight.copy_(pe * scale)
    def forward(s, ids, sel):
        x = s.n(s.w(ids) + s.p(torch.arange(ids.shape[1]))[None]); atts=[]
        for l in s.layers: x, att = l(x); atts.append(att)
        h = s.tn(F.gelu(s.t(x.reshape(-1,H)[sel])))
        return h @ s.w.weight.t() + s.bias, atts
def mask(ids, g):
    ids = ids.clone(); sp = ids < 5; sel = (torch.rand(ids.shape, generator=g) < 0.25) & ~sp
    tgt = ids[sel]; r = torch.rand(ids.shape, generator=g)
    ids[sel & (r < 0.8)] = 4
    rnd = sel & (r >= 0.8) & (r < 0.9); ids[rnd] = torch.randint(5, V, (int(rnd.sum()),), generator=g)
    return ids, sel.flatten().nonzero().squeeze(1), tgt, (ids.flatten()[sel.flatten()] == 4)
m = M(); opt = torch.optim.AdamW(m.parameters(), lr=a.lr, weight_decay=0.01)
warm = max(1, int(0.06*a.steps)); g = torch.Generator().manual_seed(0); gh = torch.Generator()
t0 = time.time()
for step in range(1, a.steps+1):
    lr = a.lr * min(step/warm, max(0.0, (a.steps-step)/(a.steps-warm))); 
    for pg in opt.param_groups: pg['lr'] = lr
    idx = torch.randint(0, len(data), (a.batch,), generator=g); ids = data[idx][:, :T]
    inp, sel, tgt, _ = mask(ids, g); logits, _ = m(inp, sel); loss = F.cross_entropy(logits, tgt)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5); opt.step()
    if step % max(1, a.steps//6) == 0 or step == a.steps:
        with torch.no_grad():
            gh.manual_seed(1); inp, sel, tgt, ism = mask(held[:, :T], gh); logits, atts = m(inp, sel)
            pred = logits.argmax(-1); hl = F.cross_entropy(logits, tgt).item()
            macc = (pred[ism] == tgt[ism]).float().mean().item()
            att = atts[0]; Tn = att.shape[-1]; idx2 = torch.arange(1, Tn)
            prev = att[:, :, idx2, idx2-1].mean().item(); nxt = att[:, :, idx2-1, idx2].mean().item()
        print(json.dumps(dict(step=step, loss=round(loss.item(),3), held=round(hl,3), mask_acc=round(macc,3), attn_prev=round(prev,3), attn_next=round(nxt,3), s=round(time.time()-t0))), flush=True)
