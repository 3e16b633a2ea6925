"""The GPT-2 the PyTorch references train (pre-LayerNorm blocks, tanh GELU, causal attention with finfo.min
masking, tied LM head), shared by the engine, train and learning benchmarks."""
import math

import torch


class Block(torch.nn.Module):
    def __init__(self, d, heads, seq, dropout=0.0):
        super().__init__()
        self.d, self.heads = d, heads
        self.ln_1, self.ln_2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.c_attn, self.c_proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.c_fc, self.mlp_proj = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)
        self.drop = torch.nn.Dropout(dropout)
        self.register_buffer("causal", torch.tril(torch.ones(seq, seq, dtype=torch.bool)))

    def forward(self, x, padding=None):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        w = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        mask = self.causal if padding is None else self.causal & padding.bool()[:, None, None, :]
        w = torch.where(mask, w, torch.tensor(torch.finfo(w.dtype).min))
        y = (self.drop(torch.softmax(w, -1)) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.c_proj(y))
        return x + self.drop(self.mlp_proj(torch.nn.functional.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")))


class GPT(torch.nn.Module):
    def __init__(self, vocab, positions, d, layers, heads, seq, dropout=0.0):
        super().__init__()
        self.wte, self.wpe = torch.nn.Embedding(vocab, d), torch.nn.Embedding(positions, d)
        for e in (self.wte, self.wpe):
            torch.nn.init.normal_(e.weight, std=0.02)
        self.h = torch.nn.ModuleList([Block(d, heads, seq, dropout) for _ in range(layers)])
        self.ln_f = torch.nn.LayerNorm(d)
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, ids, padding=None):
        x = self.drop(self.wte(ids) + self.wpe(torch.arange(ids.shape[1])))
        for blk in self.h:
            x = blk(x, padding)
        return self.ln_f(x) @ self.wte.weight.T
