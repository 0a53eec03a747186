#!/usr/bin/python3
"""Reference logits and bits per byte of the exported demo checkpoint, computed in PyTorch float32
with the inference arithmetic of a converted GGUF (what WrinkleFree and bitnet.cpp compute):

  weights      the bf16 latent weights of out/wrinklefree-demo/model.safetensors, ternarized per tensor exactly as
               `wf convert` does (beta = f32(mean |W|) summed in float64, s = f32(1/beta),
               T = +1 if f32(W*s) > 0.5, -1 if < -0.5, else 0) with the scale rounded to f16, as the
               converter stores it for every outtype
  activations  per token int8: s = 127 / max(max|x|, 1e-5), q = clamp(round_half_even(x*s), -128, 127)
               y = (T . q) * (alpha / s)
  embedding    token_embd as the GGUF holds it (f16); the lm_head (tied) is exact: f32 dot products

  /usr/bin/python3 tools/train-demo/reference.py --out tools/train-demo/out --fixture test/fixtures/demo

writes FIXTURE/reference.json (prompts, shapes) and FIXTURE/reference-logits.f32 (little-endian f32,
prompt after prompt, position after position, vocab_size values each), and prints the held-out bits
per byte and a greedy chat sample.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == '__metadata__':
            continue
        a, b = h['data_offsets']
        assert h['dtype'] == 'BF16', h
        u = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
        out[name] = torch.from_numpy(u.view(np.float32).reshape(h['shape']).copy())
    return out


def f16_round(x):
    return torch.as_tensor(x, dtype=torch.float32).half().float()


def ternarize(w):
    """(codes as f32 -1/0/+1, f16-rounded alpha), as src/convert/ternarize.ts."""
    beta = np.float32(np.abs(w.numpy().astype(np.float64)).sum() / w.numel())
    beta = max(beta, np.float32(1e-5))
    s = np.float32(1.0) / beta
    v = (w.numpy() * s).astype(np.float32)
    codes = np.where(v > 0.5, 1.0, np.where(v < -0.5, -1.0, 0.0)).astype(np.float32)
    return torch.from_numpy(codes), float(f16_round(float(beta)))


class Reference:
    def __init__(self, hf):
        with open(os.path.join(hf, 'config.json')) as f:
            self.c = json.load(f)
        w = read_safetensors(os.path.join(hf, 'model.safetensors'))
        self.embd = f16_round(w['model.embed_tokens.weight'])
        self.norm = w['model.norm.weight']
        self.layers = []
        for i in range(self.c['num_hidden_layers']):
            p = f'model.layers.{i}.'
            L = {k: w[p + n] for k, n in (('attn_norm', 'input_layernorm.weight'), ('ffn_norm', 'post_attention_layernorm.weight'),
                                           ('attn_sub_norm', 'self_attn.attn_sub_norm.weight'), ('ffn_sub_norm', 'mlp.ffn_sub_norm.weight'))}
            for k, n in (('q', 'self_attn.q_proj'), ('k', 'self_attn.k_proj'), ('v', 'self_attn.v_proj'), ('o', 'self_attn.o_proj'),
                         ('gate', 'mlp.gate_proj'), ('up', 'mlp.up_proj'), ('down', 'mlp.down_proj')):
                L[k] = ternarize(w[p + n + '.weight'])
            self.layers.append(L)
        hd = self.c['head_dim']
        inv = 1.0 / (self.c['rope_theta'] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        ang = np.arange(self.c['max_position_embeddings'], dtype=np.float64)[:, None] * inv[None, :]
        self.cos = torch.from_numpy(np.cos(ang).astype(np.float32))
        self.sin = torch.from_numpy(np.sin(ang).astype(np.float32))

    def rms(self, x, g):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c['rms_norm_eps']) * g

    @staticmethod
    def quant(x):
        s = 127.0 / x.abs().amax(-1, keepdim=True).clamp(min=1e-5)
        return torch.round(x * s).clamp(-128, 127), s  # torch.round: half to even

    @staticmethod
    def bitlinear(q, s, wt):
        codes, alpha = wt
        return (q @ codes.t()) * (alpha / s)

    def forward(self, ids):
        """logits [T, vocab] of one sequence, float32."""
        c = self.c
        T = len(ids)
        nh, nkv, hd = c['num_attention_heads'], c['num_key_value_heads'], c['head_dim']
        x = self.embd[torch.tensor(ids)]
        mask = torch.full((T, T), float('-inf')).triu(1)
        cos, sin = self.cos[:T], self.sin[:T]

        def rope(t):
            d = hd // 2
            a, b = t[..., :d], t[..., d:]
            return torch.cat([a * cos - b * sin, b * cos + a * sin], -1)

        for L in self.layers:
            q8, s = self.quant(self.rms(x, L['attn_norm']))
            q = self.bitlinear(q8, s, L['q']).view(T, nh, hd).transpose(0, 1)
            k = self.bitlinear(q8, s, L['k']).view(T, nkv, hd).transpose(0, 1)
            v = self.bitlinear(q8, s, L['v']).view(T, nkv, hd).transpose(0, 1)
            q, k = rope(q), rope(k)
            k = k.repeat_interleave(nh // nkv, 0)
            v = v.repeat_interleave(nh // nkv, 0)
            att = ((q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd)) + mask).softmax(-1)
            a = (att @ v).transpose(0, 1).reshape(T, nh * hd)
            q8, s = self.quant(self.rms(a, L['attn_sub_norm']))
            x = x + self.bitlinear(q8, s, L['o'])
            q8, s = self.quant(self.rms(x, L['ffn_norm']))
            g = torch.relu(self.bitlinear(q8, s, L['gate']))
            h = g * g * self.bitlinear(q8, s, L['up'])
            q8, s = self.quant(self.rms(h, L['ffn_sub_norm']))
            x = x + self.bitlinear(q8, s, L['down'])
        return self.rms(x, self.norm) @ self.embd.t()


def bits_per_byte(ref, tok, text, ctx):
    """Held-out text tokenized whole, cut into windows of ctx-1 tokens, each after a bos; every
    token of the text is predicted once. bits per byte = total NLL / ln 2 / UTF-8 bytes."""
    ids = tok.encode(text)
    nll = 0.0
    with torch.no_grad():
        for i in range(0, len(ids), ctx - 1):
            w = [tok.bos] + ids[i:i + ctx - 1]
            logp = ref.forward(w).log_softmax(-1)
            tgt = torch.tensor(w[1:])
            nll -= logp[torch.arange(len(w) - 1), tgt].double().sum().item()
    n_bytes = len(text.encode('utf-8'))
    return nll / math.log(2) / n_bytes, nll / len(ids), len(ids), n_bytes


def write_words(out, path):
    """Every lowercase word (letters and inner apostrophes) seen at least twice in the corpus, sorted."""
    import gzip
    import regex
    counts = {}
    for name in ('train', 'heldout'):
        for doc in train.load_docs(out, name):
            for w in regex.findall(r"[a-z]+(?:'[a-z]+)*", doc['text'].lower()):
                counts[w] = counts.get(w, 0) + 1
    words = sorted(w for w, c in counts.items() if c >= 2)
    with gzip.GzipFile(path, 'wb', mtime=0) as f:
        f.write(('\n'.join(words) + '\n').encode())
    print(f'wrote {path}: {len(words)} words')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'out'))
    ap.add_argument('--fixture', default=None)
    ap.add_argument('--bpb', action='store_true')
    ap.add_argument('--words', default=None, help='write the corpus word list (gzip) the server test checks replies against')
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.words:
        write_words(args.out, args.words)
    hf = os.path.join(args.out, train.HF_DIR)
    ref = Reference(hf)
    tok = train.Tokenizer(os.path.join(hf, 'tokenizer.json'))

    if args.fixture:
        held = train.load_docs(args.out, 'heldout')
        prompts = [[tok.bos]]
        prompts.append([tok.bos] + tok.encode(held[3]['text'])[:9])
        prompts.append([tok.bos] + tok.encode('User: ' + train.CHAT_FORTUNE[0]) + [tok.eot] + tok.encode('Assistant: '))
        prompts.append([tok.bos] + tok.encode(held[200]['text'])[:15])
        os.makedirs(args.fixture, exist_ok=True)
        blobs = []
        with torch.no_grad():
            for p in prompts:
                blobs.append(ref.forward(p).numpy().astype('<f4').tobytes())
        with open(os.path.join(args.fixture, 'reference-logits.f32'), 'wb') as f:
            f.write(b''.join(blobs))
        meta = {
            'about': 'PyTorch float32 reference logits of the demo model (tools/train-demo/reference.py): ternary weights as wf convert '
                     'makes them (f16-rounded per-tensor scale), per-token int8 activations (round half to even), f16 token_embd, exact tied head',
            'vocab_size': ref.c['vocab_size'],
            'prompts': prompts,
            'texts': [tok.decode(p) for p in prompts],
        }
        with open(os.path.join(args.fixture, 'reference.json'), 'w') as f:
            json.dump(meta, f, indent=1)
        print('wrote', args.fixture, [len(p) for p in prompts])

    if args.bpb:
        with open(os.path.join(args.out, 'corpus', 'heldout.txt'), encoding='utf-8') as f:
            text = f.read()
        bpb, nll_tok, n_tok, n_bytes = bits_per_byte(ref, tok, text, ref.c['max_position_embeddings'])
        print(f'held-out: {n_bytes} bytes, {n_tok} tokens, {nll_tok:.4f} nats/token, perplexity {math.exp(nll_tok):.2f}, '
              f'{bpb:.4f} bits per byte')

    # a greedy chat sample (exact head), to see the model speak
    ids = [tok.bos] + tok.encode('User: ' + train.CHAT_FORTUNE[1]) + [tok.eot] + tok.encode('Assistant: ')
    with torch.no_grad():
        for _ in range(40):
            nxt = int(ref.forward(ids)[-1].argmax())
            ids.append(nxt)
            if nxt in (tok.eot, tok.eos):
                break
    print('greedy chat sample:', repr(tok.decode(ids)))


if __name__ == '__main__':
    main()
