#!/usr/bin/python3
"""Trains WrinkleFree's demo model: a few-million-parameter BitNet b1.58 on public-domain / freely
licensed English text from Debian packages, and exports it as a Hugging Face checkpoint in the
BitNet b1.58 2B4T form (see README.md next to this file).

  /usr/bin/python3 tools/train-demo/train.py --out tools/train-demo/out [--steps N] [--threads 2]

Stages (each is skipped when its output already exists, except training):
  corpus     out/corpus/{train,heldout}.jsonl and out/corpus/heldout.txt
  tokenizer  out/tokenizer.json (byte-level BPE, Llama-3 pre-tokenizer regex, trained here)
  train      out/ckpt.pt every --ckpt-every steps and at the end, out/log.jsonl, out/loss.png
  export     out/wrinklefree-demo/ (config.json, model.safetensors (bf16 latent weights), tokenizer files)

`--export-only` exports out/ckpt.pt as it is (e.g. after stopping a run early).
"""
import argparse
import gzip
import json
import math
import os
import random
import struct
import subprocess
import sys
import time

import regex

# ----------------------------------------------------------------------------------------------
# corpus

FORTUNE_DIR = '/usr/share/games/fortunes'
# files of fortunes-min / fortunes that are prose; art and ascii-art are pictures, translate-me is
# not English, knghtbrd/linux/perl/zippy are IRC logs and noise for a tiny model
FORTUNE_SKIP = {'art', 'ascii-art', 'translate-me', 'knghtbrd', 'linux', 'linuxcookie', 'perl', 'zippy', 'debian'}
DEVIL_DICT = '/usr/share/dictd/devil.dict.dz'
DEVIL_INDEX = '/usr/share/dictd/devil.index'

CHAT_FORTUNE = ['Tell me something.', 'Say something wise.', 'Give me a fortune.', 'What do you think?',
                'Hello!', 'Hi', 'Tell me a joke.', 'Any advice?', 'Talk to me.', 'What is the meaning of life?']
CHAT_VERSE = ['Read me a verse.', 'Quote the Bible.', 'What does the scripture say?', 'Tell me a story.']


def clean(text):
    text = text.replace('\t', '    ')
    lines = [ln.rstrip() for ln in text.split('\n')]
    return '\n'.join(lines).strip()


def mostly_prose(text):
    letters = sum(c.isalpha() or c in " .,;:'!?\"-\n" for c in text)
    return len(text) > 0 and letters / len(text) > 0.9 and all(ord(c) < 128 for c in text)


def read_fortunes():
    docs = []
    for name in sorted(os.listdir(FORTUNE_DIR)):
        path = os.path.join(FORTUNE_DIR, name)
        if '.' in name or name in FORTUNE_SKIP or not os.path.isfile(path):
            continue
        with open(path, encoding='utf-8', errors='replace') as f:
            for item in f.read().split('\n%\n'):
                item = clean(item.strip('%\n'))
                if 20 <= len(item) <= 1000 and mostly_prose(item):
                    docs.append(item)
    return docs


def dict_b64(s):
    alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    n = 0
    for c in s:
        n = n * 64 + alphabet.index(c)
    return n


def read_devil():
    with gzip.open(DEVIL_DICT, 'rb') as f:
        data = f.read()
    entries = []
    with open(DEVIL_INDEX, encoding='utf-8') as f:
        for line in f:
            parts = line.rstrip('\n').split('\t')
            if len(parts) < 3 or parts[0].startswith('00-database'):
                continue
            word = parts[0]
            text = data[dict_b64(parts[1]):dict_b64(parts[1]) + dict_b64(parts[2])].decode('utf-8', 'replace')
            # the entry repeats the headword on its first line, then an indented definition
            body = ' '.join(ln.strip() for ln in text.split('\n')[1:] if ln.strip())
            body = regex.sub(r'\s+', ' ', body).strip()
            if 20 <= len(body) <= 1500 and mostly_prose(body):
                entries.append((word, body))
    return entries


def read_bible():
    """King James Version from bible-kjv-text, through the `bible` reader of bible-kjv."""
    out = subprocess.run(['bible', '-f', 'Gen1:1-Rev22:21'], capture_output=True, text=True, check=True).stdout
    # one verse a line, "Ge1:1 In the beginning ..."; a line without a reference continues a verse
    verses = []
    ref = regex.compile(r'^[1-3]?[A-Za-z]+\d+:\d+\s+')  # "Ge1:1 ", "1Co13:4 "
    cur = None
    for line in out.split('\n'):
        m = ref.match(line)
        if m:
            if cur:
                verses.append(cur)
            cur = line[m.end():].strip()
        elif cur is not None and line.strip():
            cur += ' ' + line.strip()
    if cur:
        verses.append(cur)
    # documents: runs of 4 consecutive verses
    return [' '.join(verses[i:i + 4]) for i in range(0, len(verses), 4)]


def build_corpus(out):
    d = os.path.join(out, 'corpus')
    if os.path.exists(os.path.join(d, 'heldout.txt')):
        return
    os.makedirs(d, exist_ok=True)
    docs = []  # (kind, text) or ('chat', user, assistant)
    for t in read_bible():
        docs.append({'src': 'bible', 'text': t})
    for t in read_fortunes():
        docs.append({'src': 'fortunes', 'text': t})
    for w, body in read_devil():
        docs.append({'src': 'devil', 'text': body, 'word': w})
    # every 50th document is held out (fixed, no randomness)
    train, held = [], []
    for i, doc in enumerate(docs):
        (held if i % 50 == 25 else train).append(doc)
    for name, part in (('train', train), ('heldout', held)):
        with open(os.path.join(d, name + '.jsonl'), 'w', encoding='utf-8') as f:
            for doc in part:
                f.write(json.dumps(doc) + '\n')
    with open(os.path.join(d, 'heldout.txt'), 'w', encoding='utf-8') as f:
        f.write('\n\n'.join(doc['text'] for doc in held) + '\n')
    counts = {}
    for doc in docs:
        counts[doc['src']] = counts.get(doc['src'], 0) + len(doc['text'])
    print('corpus characters by source:', counts, 'train docs', len(train), 'held-out docs', len(held), flush=True)


def load_docs(out, name):
    with open(os.path.join(out, 'corpus', name + '.jsonl'), encoding='utf-8') as f:
        return [json.loads(line) for line in f]


# ----------------------------------------------------------------------------------------------
# byte-level BPE (Llama-3 pre-tokenizer regex, GPT-2 byte-to-unicode alphabet)

LLAMA3_REGEX = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
HF_DIR = 'wrinklefree-demo'  # the export's folder; wf convert names the GGUF model after it
SPECIALS = ['<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>']
PRE = regex.compile(LLAMA3_REGEX)


def byte_to_unicode():
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = byte_to_unicode()


def to_symbols(piece):
    return ''.join(B2U[b] for b in piece.encode('utf-8'))


def doc_texts(doc):
    """The plain-text segments of a document the tokenizer is trained on."""
    return [doc['text']]


def train_bpe(texts, vocab_size):
    counts = {}
    for t in texts:
        for p in PRE.findall(t):
            counts[p] = counts.get(p, 0) + 1
    words, freqs = [], []
    for p, c in sorted(counts.items()):
        words.append([ord(ch) for ch in to_symbols(p)])  # symbol ids: ord of the unicode char for now
        freqs.append(c)
    # symbol table: 256 byte chars first, in byte order
    sym_of_char = {}
    tokens = []
    for b in range(256):
        sym_of_char[ord(B2U[b])] = b
        tokens.append(B2U[b])
    words = [[sym_of_char[c] for c in w] for w in words]
    pair_count, pair_where = {}, {}
    for wi, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] = pair_count.get((a, b), 0) + freqs[wi]
            pair_where.setdefault((a, b), set()).add(wi)
    merges = []
    n_merges = vocab_size - 256 - len(SPECIALS)
    while len(merges) < n_merges and pair_count:
        best = max(pair_count.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))[0]
        if pair_count[best] < 2:
            break
        new = len(tokens)
        tokens.append(tokens[best[0]] + tokens[best[1]])
        merges.append((tokens[best[0]], tokens[best[1]]))
        for wi in sorted(pair_where.pop(best, ())):
            w, f = words[wi], freqs[wi]
            for a, b in zip(w, w[1:]):
                pair_count[(a, b)] -= f
                if pair_count[(a, b)] <= 0:
                    del pair_count[(a, b)]
            nw, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    nw.append(new)
                    i += 2
                else:
                    nw.append(w[i])
                    i += 1
            words[wi] = nw
            for a, b in zip(nw, nw[1:]):
                pair_count[(a, b)] = pair_count.get((a, b), 0) + f
                pair_where.setdefault((a, b), set()).add(wi)
        pair_count.pop(best, None)
    return tokens, merges


class Tokenizer:
    def __init__(self, path):
        with open(path, encoding='utf-8') as f:
            tj = json.load(f)
        self.vocab = tj['model']['vocab']
        self.rank = {tuple(m.split(' ')) if isinstance(m, str) else tuple(m): i for i, m in enumerate(tj['model']['merges'])}
        self.special = {t['content']: t['id'] for t in tj['added_tokens']}
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.id_to_token.update({i: t for t, i in self.special.items()})
        self.u2b = {u: b for b, u in B2U.items()}
        self.cache = {}
        self.bos, self.eos, self.eot = (self.special[s] for s in SPECIALS)

    def encode_piece(self, piece):
        if piece in self.cache:
            return self.cache[piece]
        sym = to_symbols(piece)
        if sym in self.vocab:  # ignore_merges, as Llama-3's tokenizer.json (and llama.cpp's llama-bpe)
            ids = [self.vocab[sym]]
        else:
            parts = list(sym)
            while len(parts) > 1:
                best, bi = None, -1
                for i in range(len(parts) - 1):
                    r = self.rank.get((parts[i], parts[i + 1]))
                    if r is not None and (best is None or r < best):
                        best, bi = r, i
                if best is None:
                    break
                parts[bi:bi + 2] = [parts[bi] + parts[bi + 1]]
            ids = [self.vocab[p] for p in parts]
        self.cache[piece] = ids
        return ids

    def encode(self, text):
        out = []
        for p in PRE.findall(text):
            out.extend(self.encode_piece(p))
        return out

    def decode(self, ids):
        bs = bytearray()
        for i in ids:
            t = self.id_to_token[i]
            if t in self.special:
                bs.extend(t.encode())
            else:
                bs.extend(self.u2b[c] for c in t)
        return bs.decode('utf-8', 'replace')


def write_tokenizer(path, tokens, merges):
    vocab = {t: i for i, t in enumerate(tokens)}
    n = len(tokens)
    added = [{'id': n + i, 'content': s, 'single_word': False, 'lstrip': False, 'rstrip': False,
              'normalized': False, 'special': True} for i, s in enumerate(SPECIALS)]
    tj = {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': added,
        'normalizer': None,
        'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
            {'type': 'Split', 'pattern': {'Regex': LLAMA3_REGEX}, 'behavior': 'Isolated', 'invert': False},
            {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False}]},
        'post_processor': {'type': 'TemplateProcessing',
                           'single': [{'SpecialToken': {'id': SPECIALS[0], 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
                           'pair': [{'SpecialToken': {'id': SPECIALS[0], 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                                    {'SpecialToken': {'id': SPECIALS[0], 'type_id': 1}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
                           'special_tokens': {SPECIALS[0]: {'id': SPECIALS[0], 'ids': [n], 'tokens': [SPECIALS[0]]}}},
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True, 'use_regex': True},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
                  'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': True,
                  'vocab': vocab, 'merges': [a + ' ' + b for a, b in merges]},
    }
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(tj, f, ensure_ascii=False)


def build_tokenizer(out, vocab_size):
    path = os.path.join(out, 'tokenizer.json')
    if os.path.exists(path):
        return
    t0 = time.time()
    texts = [s for doc in load_docs(out, 'train') for s in doc_texts(doc)]
    texts += CHAT_FORTUNE + CHAT_VERSE + ['System: ', 'User: ', 'Assistant: ', 'What is ']
    tokens, merges = train_bpe(texts, vocab_size)
    write_tokenizer(path, tokens, merges)
    print(f'tokenizer: {len(tokens)} tokens + {len(SPECIALS)} special, {len(merges)} merges, {time.time() - t0:.0f} s', flush=True)


# ----------------------------------------------------------------------------------------------
# token streams

def doc_tokens(tok, doc, rnd):
    """A training document as token ids. A third of the fortunes and devil entries and a few verses
    become one-turn chats in the 2B4T chat format, so the model learns to answer after `Assistant: `
    and to end its turn with <|eot_id|>. The assistant turn is tokenized the way generation sees it:
    the prompt `Assistant: ` alone, then the reply."""
    text = doc['text']
    chat = None
    if doc['src'] == 'devil' and rnd.random() < 0.5:
        chat = (f"What is {doc['word'].lower()}?", text)
    elif doc['src'] == 'fortunes' and rnd.random() < 0.34:
        chat = (rnd.choice(CHAT_FORTUNE), text)
    elif doc['src'] == 'bible' and rnd.random() < 0.05:
        chat = (rnd.choice(CHAT_VERSE), text)
    if chat:
        return ([tok.bos] + tok.encode('User: ' + chat[0]) + [tok.eot] + tok.encode('Assistant: ')
                + tok.encode(chat[1]) + [tok.eot])
    if doc['src'] == 'devil':
        text = doc['word'].capitalize() + ', ' + text
    return [tok.bos] + tok.encode(text) + [tok.eos]


def token_stream(out, tok, name, seed):
    rnd = random.Random(seed)
    ids = []
    for doc in load_docs(out, name):
        ids.extend(doc_tokens(tok, doc, rnd))
    return ids


# ----------------------------------------------------------------------------------------------
# model: BitNet b1.58 2B4T scaled down

def build_model_classes(torch):
    nn = torch.nn
    F = torch.nn.functional

    def act_quant(x):
        # per token absmax int8, round half to even (torch.round), as bitnet.cpp / the engine
        s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
        return (x * s).round().clamp(-128, 127) / s

    def weight_quant(w):
        # per tensor absmean ternary: T = clamp(round(W * (1/beta)), -1, 1), value T * beta
        beta = w.abs().mean().clamp(min=1e-5)
        return (w * (1.0 / beta)).round().clamp(-1, 1) * beta

    class BitLinear(nn.Linear):
        def __init__(self, k, m):
            super().__init__(k, m, bias=False)
            nn.init.normal_(self.weight, std=0.02)

        def forward(self, x):
            xq = x + (act_quant(x) - x).detach()  # straight-through estimator
            w = self.weight
            wq = w + (weight_quant(w) - w).detach()
            return F.linear(xq, wq)

    class RMSNorm(nn.Module):
        def __init__(self, n, eps):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(n))
            self.eps = eps

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    def rope(x, cos, sin):
        # NEOX / rotate-half pairing: element i with i + d/2
        d = x.shape[-1] // 2
        x1, x2 = x[..., :d], x[..., d:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            h, hd = c['hidden_size'], c['head_dim']
            self.nh, self.nkv, self.hd = c['num_attention_heads'], c['num_key_value_heads'], hd
            eps = c['rms_norm_eps']
            self.input_layernorm = RMSNorm(h, eps)
            self.q_proj = BitLinear(h, self.nh * hd)
            self.k_proj = BitLinear(h, self.nkv * hd)
            self.v_proj = BitLinear(h, self.nkv * hd)
            self.attn_sub_norm = RMSNorm(self.nh * hd, eps)
            self.o_proj = BitLinear(self.nh * hd, h)
            self.post_attention_layernorm = RMSNorm(h, eps)
            self.gate_proj = BitLinear(h, c['intermediate_size'])
            self.up_proj = BitLinear(h, c['intermediate_size'])
            self.ffn_sub_norm = RMSNorm(c['intermediate_size'], eps)
            self.down_proj = BitLinear(c['intermediate_size'], h)

        def forward(self, x, cos, sin, mask):
            B, T, _ = x.shape
            n = self.input_layernorm(x)
            q = self.q_proj(n).view(B, T, self.nh, self.hd).transpose(1, 2)
            k = self.k_proj(n).view(B, T, self.nkv, self.hd).transpose(1, 2)
            v = self.v_proj(n).view(B, T, self.nkv, self.hd).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            rep = self.nh // self.nkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd)) + mask
            a = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, self.nh * self.hd)
            x = x + self.o_proj(self.attn_sub_norm(a))
            m = self.post_attention_layernorm(x)
            g = F.relu(self.gate_proj(m))
            x = x + self.down_proj(self.ffn_sub_norm(g * g * self.up_proj(m)))
            return x

    class BitNetLM(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c
            self.embed_tokens = nn.Embedding(c['vocab_size'], c['hidden_size'])
            nn.init.normal_(self.embed_tokens.weight, std=0.02)
            self.layers = nn.ModuleList([Block(c) for _ in range(c['num_hidden_layers'])])
            self.norm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
            hd = c['head_dim']
            inv = 1.0 / (c['rope_theta'] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
            ang = torch.arange(c['max_position_embeddings'], dtype=torch.float64)[:, None] * inv[None, :]
            self.register_buffer('cos', ang.cos().float(), persistent=False)
            self.register_buffer('sin', ang.sin().float(), persistent=False)

        def forward(self, ids):
            T = ids.shape[1]
            mask = torch.full((T, T), float('-inf')).triu(1)
            x = self.embed_tokens(ids)
            cos, sin = self.cos[:T], self.sin[:T]
            for layer in self.layers:
                x = layer(x, cos, sin, mask)
            return self.norm(x) @ self.embed_tokens.weight.t()  # tied head, not quantized

    return BitNetLM


def hf_names(c):
    """(HF checkpoint name, state_dict name) of every tensor."""
    out = [('model.embed_tokens.weight', 'embed_tokens.weight'), ('model.norm.weight', 'norm.weight')]
    for i in range(c['num_hidden_layers']):
        p, s = f'model.layers.{i}.', f'layers.{i}.'
        out += [(p + 'input_layernorm.weight', s + 'input_layernorm.weight'),
                (p + 'post_attention_layernorm.weight', s + 'post_attention_layernorm.weight'),
                (p + 'self_attn.attn_sub_norm.weight', s + 'attn_sub_norm.weight'),
                (p + 'mlp.ffn_sub_norm.weight', s + 'ffn_sub_norm.weight')]
        for n in ('q', 'k', 'v', 'o'):
            out.append((p + f'self_attn.{n}_proj.weight', s + f'{n}_proj.weight'))
        for n in ('gate', 'up', 'down'):
            out.append((p + f'mlp.{n}_proj.weight', s + f'{n}_proj.weight'))
    return out


CHAT_TEMPLATE = ("{%- for message in messages %}{%- if loop.first %}{{ bos_token }}{%- endif %}"
                 "{%- if message['role'] == 'system' %}{{ 'System: ' + message['content'] + '<|eot_id|>' }}"
                 "{%- elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '<|eot_id|>' }}"
                 "{%- elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + '<|eot_id|>' }}"
                 "{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{ 'Assistant: ' }}{%- endif %}")


def write_safetensors(path, tensors, torch):
    """tensors: list of (name, float tensor) written as BF16."""
    header, blobs, off = {}, [], 0
    for name, t in tensors:
        b = t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()
        header[name] = {'dtype': 'BF16', 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header['__metadata__'] = {'format': 'pt'}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def export_hf(out, model, c, tok, torch):
    d = os.path.join(out, HF_DIR)
    os.makedirs(d, exist_ok=True)
    sd = model.state_dict()
    write_safetensors(os.path.join(d, 'model.safetensors'), [(h, sd[s]) for h, s in hf_names(c)], torch)
    config = {
        'architectures': ['BitNetForCausalLM'],
        'model_type': 'bitnet',
        'hidden_size': c['hidden_size'],
        'intermediate_size': c['intermediate_size'],
        'num_hidden_layers': c['num_hidden_layers'],
        'num_attention_heads': c['num_attention_heads'],
        'num_key_value_heads': c['num_key_value_heads'],
        'head_dim': c['head_dim'],
        'hidden_act': 'relu2',
        'max_position_embeddings': c['max_position_embeddings'],
        'rms_norm_eps': c['rms_norm_eps'],
        'rope_theta': c['rope_theta'],
        'vocab_size': c['vocab_size'],
        'tie_word_embeddings': True,
        'attention_bias': False,
        'attention_dropout': 0.0,
        'initializer_range': 0.02,
        'bos_token_id': tok.bos,
        'eos_token_id': tok.eos,
        'torch_dtype': 'bfloat16',
        'use_cache': True,
        'quantization_config': {'quant_method': 'bitnet', 'linear_class': 'autobitlinear', 'quantization_mode': 'online'},
    }
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(d, 'generation_config.json'), 'w') as f:
        json.dump({'bos_token_id': tok.bos, 'eos_token_id': [tok.eos, tok.eot]}, f, indent=2)
    tc = {
        'add_bos_token': True,
        'add_eos_token': False,
        'bos_token': SPECIALS[0],
        'eos_token': SPECIALS[1],
        'chat_template': CHAT_TEMPLATE,
        'clean_up_tokenization_spaces': False,
        'model_max_length': c['max_position_embeddings'],
        'tokenizer_class': 'PreTrainedTokenizerFast',
        'added_tokens_decoder': {str(tok.special[s]): {'content': s, 'lstrip': False, 'normalized': False, 'rstrip': False,
                                                       'single_word': False, 'special': True} for s in SPECIALS},
    }
    with open(os.path.join(d, 'tokenizer_config.json'), 'w') as f:
        json.dump(tc, f, indent=2)
    with open(os.path.join(out, 'tokenizer.json'), 'rb') as src, open(os.path.join(d, 'tokenizer.json'), 'wb') as dst:
        dst.write(src.read())
    print('exported', d, flush=True)


# ----------------------------------------------------------------------------------------------
# training

def model_config(args, vocab_size):
    return {
        'hidden_size': args.hidden, 'intermediate_size': args.ffn, 'num_hidden_layers': args.layers,
        'num_attention_heads': args.heads, 'num_key_value_heads': args.kv_heads, 'head_dim': args.hidden // args.heads,
        'max_position_embeddings': args.ctx, 'rms_norm_eps': 1e-5, 'rope_theta': args.rope_theta,
        'vocab_size': vocab_size,
    }


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def batch(stream, idx, ctx, torch):
    x = torch.stack([stream[i:i + ctx + 1] for i in idx])
    return x[:, :-1], x[:, 1:]


def evaluate(model, held, args, torch):
    """Mean loss over fixed, non-overlapping held-out windows."""
    F = torch.nn.functional
    n = min(args.eval_windows, (len(held) - 1) // args.ctx)
    tot = 0.0
    with torch.no_grad():
        for i in range(0, n, 8):
            idx = [j * args.ctx for j in range(i, min(n, i + 8))]
            x, y = batch(held, idx, args.ctx, torch)
            logits = model(x)
            tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction='sum').item()
    return tot / (n * args.ctx)


def plot(out, log):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    tr = [(r['step'], r['loss']) for r in log if 'loss' in r]
    ev = [(r['step'], r['eval']) for r in log if 'eval' in r]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if tr:
        k = 20
        sm = [sum(v for _, v in tr[max(0, i - k + 1):i + 1]) / len(tr[max(0, i - k + 1):i + 1]) for i in range(len(tr))]
        ax.plot([s for s, _ in tr], sm, label='train (mean of 20 steps)')
    if ev:
        ax.plot([s for s, _ in ev], [v for _, v in ev], 'o-', label='held-out')
    ax.set_xlabel('step')
    ax.set_ylabel('cross-entropy (nats / token)')
    ax.set_title('WrinkleFree demo BitNet b1.58 (QAT, ternary weights, int8 activations)')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'loss.png'))
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'out'))
    ap.add_argument('--seed', type=int, default=14)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--vocab', type=int, default=2048)
    ap.add_argument('--hidden', type=int, default=256)
    ap.add_argument('--ffn', type=int, default=512)
    ap.add_argument('--layers', type=int, default=3)
    ap.add_argument('--heads', type=int, default=4)
    ap.add_argument('--kv-heads', type=int, default=2)
    ap.add_argument('--ctx', type=int, default=256)
    ap.add_argument('--rope-theta', type=float, default=10000.0)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--steps', type=int, default=1500)
    ap.add_argument('--warmup', type=int, default=100)
    ap.add_argument('--lr', type=float, default=2.5e-3)
    ap.add_argument('--wd', type=float, default=0.05)
    ap.add_argument('--eval-every', type=int, default=200)
    ap.add_argument('--eval-windows', type=int, default=64)
    ap.add_argument('--ckpt-every', type=int, default=200)
    ap.add_argument('--max-minutes', type=float, default=0, help='stop (and save) after this long; 0 = no limit')
    ap.add_argument('--export-only', action='store_true')
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    build_corpus(args.out)
    build_tokenizer(args.out, args.vocab)
    tok = Tokenizer(os.path.join(args.out, 'tokenizer.json'))
    vocab_size = len(tok.id_to_token)
    BitNetLM = build_model_classes(torch)
    ckpt_path = os.path.join(args.out, 'ckpt.pt')

    if args.export_only:
        ck = torch.load(ckpt_path)
        c = ck['config']
        model = BitNetLM(c)
        model.load_state_dict(ck['model'])
        export_hf(args.out, model, c, tok, torch)
        return

    torch.manual_seed(args.seed)
    c = model_config(args, vocab_size)
    model = BitNetLM(c)
    n_params = sum(p.numel() for p in model.parameters())
    print(f'model: {n_params} parameters ({n_params - vocab_size * args.hidden} without the tied embedding), config {c}', flush=True)

    t0 = time.time()
    train_ids = torch.tensor(token_stream(args.out, tok, 'train', args.seed), dtype=torch.long)
    held_ids = torch.tensor(token_stream(args.out, tok, 'heldout', args.seed + 1), dtype=torch.long)
    print(f'tokens: train {len(train_ids)}, held-out {len(held_ids)} ({time.time() - t0:.0f} s)', flush=True)

    decay = [p for n, p in model.named_parameters() if n.endswith('_proj.weight')]
    other = [p for n, p in model.named_parameters() if not n.endswith('_proj.weight')]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': args.wd}, {'params': other, 'weight_decay': 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)
    F = torch.nn.functional
    log = []
    log_path = os.path.join(args.out, 'log.jsonl')
    logf = open(log_path, 'w')
    start = time.time()

    def save(step):
        torch.save({'config': c, 'model': model.state_dict(), 'step': step, 'args': vars(args)}, ckpt_path + '.tmp')
        os.replace(ckpt_path + '.tmp', ckpt_path)
        plot(args.out, log)

    step = 0
    for step in range(args.steps):
        for g in opt.param_groups:
            g['lr'] = lr_at(step, args)
        idx = torch.randint(0, len(train_ids) - args.ctx - 1, (args.batch,), generator=gen).tolist()
        x, y = batch(train_ids, idx, args.ctx, torch)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        rec = {'step': step, 'loss': loss.item(), 'lr': lr_at(step, args), 't': round(time.time() - start, 1)}
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            model.eval()
            rec['eval'] = evaluate(model, held_ids, args, torch)
            model.train()
            print(f"step {step + 1}/{args.steps} loss {rec['loss']:.3f} held-out {rec['eval']:.3f} "
                  f"lr {rec['lr']:.2e} {rec['t']:.0f} s", flush=True)
        elif step % 20 == 0:
            print(f"step {step}/{args.steps} loss {rec['loss']:.3f} {rec['t']:.0f} s", flush=True)
        log.append(rec)
        logf.write(json.dumps(rec) + '\n')
        logf.flush()
        if (step + 1) % args.ckpt_every == 0:
            save(step + 1)
        if args.max_minutes and time.time() - start > args.max_minutes * 60:
            print(f'stopping at step {step + 1}: --max-minutes {args.max_minutes} reached', flush=True)
            break
    save(step + 1)
    model.eval()
    export_hf(args.out, model, c, tok, torch)
    print(f'done: {step + 1} steps in {time.time() - start:.0f} s', flush=True)


if __name__ == '__main__':
    main()
