#!/usr/bin/python3
"""Writes tests/fixtures/fastai/: tiny fastai-style AWD-LSTM weight files, vocab pickles and the
outputs PyTorch computes from them, read by tests/interop/*_test.cc without Python.

Regenerate with Debian's python3-torch (1.13), no fastai needed:
    /usr/bin/python3 scripts/make_fastai_fixtures.py
The values are seeded: a rerun with the same torch writes identical files, except that the
legacy-format files name their storages by memory address (torch/serialization.py _legacy_save),
so those keys change.

The modules below copy the structure of fastai's AWD_LSTM + LinearDecoder
(fastai/text/models/awdlstm.py; v1 fastai/text/models/awd_lstm.py) so that state_dict() yields
fastai's key names, order and _metadata: SequentialRNN(AWD_LSTM, LinearDecoder) gives the "0." and
"1." prefixes; AWD_LSTM holds encoder (nn.Embedding), encoder_dp (EmbeddingDropout holding the
same Embedding as "emb") and rnns (WeightDropout around a 1-layer nn.LSTM). WeightDropout
registers weight_hh_l0_raw; v1 also keeps a dropped copy as module.weight_hh_l0, which here is
made DIFFERENT from the raw one (masked and rescaled, as after a training step) so that a reader
using the wrong matrix fails; v2 removes module.weight_hh_l0 from the state dict.

The forward pass is fastai's with every dropout off: embedding lookup, each layer through
torch.lstm with the raw W_hh, decoder = linear (tied: the embedding matrix) + bias.

Files:
  lm_v1_h10_legacy.pth  v1 keys, legacy format (torch.save(..., _use_new_zipfile_serialization=False)),
                        V=50, emb 8, hidden 10, 3 layers ("1150-style"), tied, out bias
  lm_v1_h12_legacy.pth  the same with hidden 12 ("1152-style") and 2 layers
  lm_v2_h12_zip.pth     v2 keys, zip format, learn.save(with_opt=True)'s {'model': sd, 'opt': ...};
                        the optimizer state is fastai v2's {'state': [...], 'hypers': L([...])},
                        L being fastcore.foundation.L (a global outside the reader's allow-list)
  lm_v2_untied_zip.pth  v2 keys, zip, plain state dict: hidden 6, 2 layers, untied decoder, no bias
  <name>.expected.txt   for 3 token sequences, each run from a zero state with batch 1: the logits
                        (seq_len x V, row-major) and each layer's final h and c
  tensors_zip.pth, tensors_legacy.pth
                        a plain dict of assorted tensors (dtypes, views, a Parameter, a 0-d and an
                        empty tensor) whose values tests/interop/torch_file_test.cc recomputes
  itos_p2.pkl, itos_p4.pkl
                        the 50-token vocab (fastai v2 special tokens first) as pickle.dump(list)
                        with protocols 2 and 4 (FRAME, SHORT_BINUNICODE, MEMOIZE)

Expected-output format: blocks of "<name> <count>" followed by <count> lines of one number each
("tokens.<case>", "logits.<case>", "h.<case>.<layer>", "c.<case>.<layer>").
"""
import collections
import os
import pickle
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "fastai")
VOCAB = 50
SPECIAL = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"]
CASES = [[2, 9, 10, 11, 12, 3], [2, 5, 40, 41, 42, 43, 44, 45, 46, 49], [2, 0, 1, 7]]


class EmbeddingDropout(nn.Module):
  def __init__(self, emb):
    super().__init__()
    self.emb = emb


class WeightDropout(nn.Module):
  def __init__(self, lstm, v1, gen):
    super().__init__()
    self.module = lstm
    raw = lstm.weight_hh_l0.data.clone()
    self.register_parameter("weight_hh_l0_raw", nn.Parameter(raw))
    if v1:
      # fastai v1 keeps module.weight_hh_l0 in _parameters; after training it is a dropped copy.
      mask = (torch.rand(raw.shape, generator=gen) > 0.5).float() * 2.0
      lstm._parameters["weight_hh_l0"] = raw * mask
    else:
      del lstm._parameters["weight_hh_l0"]  # v2: delattr, then a plain (unsaved) attribute


class AwdLstm(nn.Module):
  def __init__(self, emb, hid, layers, v1, gen):
    super().__init__()
    self.encoder = nn.Embedding(VOCAB, emb, padding_idx=1)
    self.encoder_dp = EmbeddingDropout(self.encoder)
    sizes = [(emb if l == 0 else hid, hid if l < layers - 1 else emb) for l in range(layers)]
    self.rnns = nn.ModuleList(
        [WeightDropout(nn.LSTM(i, o, 1, batch_first=True), v1, gen) for i, o in sizes])


class LinearDecoder(nn.Module):
  def __init__(self, emb, tie_encoder, bias):
    super().__init__()
    self.decoder = nn.Linear(emb, VOCAB, bias=bias)
    if tie_encoder is not None:
      self.decoder.weight = tie_encoder.weight


def make_model(emb, hid, layers, v1, tied=True, bias=True, seed=0):
  gen = torch.Generator().manual_seed(seed)
  torch.manual_seed(seed)
  enc = AwdLstm(emb, hid, layers, v1, gen)
  dec = LinearDecoder(emb, enc.encoder if tied else None, bias)
  with torch.no_grad():
    enc.encoder.weight.uniform_(-0.5, 0.5)
    if bias:
      dec.decoder.bias.uniform_(-0.2, 0.2)
  return nn.Sequential(enc, dec)


def forward(model, tokens):
  """Logits (T, V) and [(h, c)] per layer for one sequence from a zero state, dropouts off."""
  enc, dec = model[0], model[1]
  x = F.embedding(torch.tensor(tokens).unsqueeze(1), enc.encoder.weight)  # (T, 1, emb)
  states = []
  for wd in enc.rnns:
    lstm = wd.module
    h0 = torch.zeros(1, 1, lstm.hidden_size)
    weights = [lstm.weight_ih_l0, wd.weight_hh_l0_raw, lstm.bias_ih_l0, lstm.bias_hh_l0]
    x, h, c = torch.lstm(x, (h0, h0.clone()), weights, True, 1, 0.0, False, False, False)
    states.append((h, c))
  return dec.decoder(x).squeeze(1), states


def write_expected(model, path):
  with open(path, "w") as f:
    for i, tokens in enumerate(CASES):
      logits, states = forward(model, tokens)
      blocks = [(f"tokens.{i}", tokens), (f"logits.{i}", logits.flatten().tolist())]
      for l, (h, c) in enumerate(states):
        blocks += [(f"h.{i}.{l}", h.flatten().tolist()), (f"c.{i}.{l}", c.flatten().tolist())]
      for name, values in blocks:
        f.write(f"{name} {len(values)}\n")
        f.writelines(f"{v!r}\n" for v in values)


def fake_fastcore_list():
  """A class pickled as fastcore.foundation.L, like fastai v2's Optimizer.hypers."""
  module = types.ModuleType("fastcore.foundation")
  class L:
    def __init__(self, items):
      self.items = items
  L.__module__, L.__qualname__ = module.__name__, "L"
  module.L = L
  sys.modules.setdefault("fastcore", types.ModuleType("fastcore"))
  sys.modules[module.__name__] = module
  return L


def save_lm(name, model, legacy, with_opt=False):
  with torch.no_grad():
    sd = model.state_dict()
    obj = sd
    if with_opt:
      L = fake_fastcore_list()
      state = [{"grad_avg": torch.zeros_like(p), "sqr_avg": torch.full_like(p, 0.5), "step": 3}
               for p in model.parameters()]
      hypers = L([{"wd": 0.01, "sqr_mom": 0.99, "lr": 0.002, "mom": 0.9, "eps": 1e-05,
                   "decouple_wd": True, "mask": None}])
      obj = {"model": sd, "opt": {"state": state, "hypers": hypers}}
    path = os.path.join(OUT, name + ".pth")
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    write_expected(model, os.path.join(OUT, name + ".expected.txt"))


def save_tensors():
  base = torch.arange(20, dtype=torch.float32)
  tensors = {
      "float": torch.arange(6, dtype=torch.float32).reshape(2, 3),
      "half": torch.arange(6).half().reshape(3, 2),
      "bfloat16": torch.arange(4).bfloat16(),
      "double": torch.arange(5).double() / 4,
      "long": torch.arange(-3, 3),
      "int": torch.arange(3, dtype=torch.int32),
      "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
      "slice": base[5:11],
      "param": nn.Parameter(torch.arange(3, dtype=torch.float32)),
      "scalar": torch.tensor(7.5),
      "empty": torch.zeros(0, 3),
  }
  torch.save(tensors, os.path.join(OUT, "tensors_zip.pth"))
  torch.save(tensors, os.path.join(OUT, "tensors_legacy.pth"), _use_new_zipfile_serialization=False)


def save_vocab():
  words = ["the", ",", ".", "of", "and", "to", "a", "in", "is", "it", "café", "naïve", "日本",
           "x" * 300]  # a token over 255 bytes takes BINUNICODE even in protocol 4
  itos = SPECIAL + words + [f"w{i}" for i in range(VOCAB - len(SPECIAL) - len(words))]
  assert len(itos) == VOCAB
  for protocol in (2, 4):
    with open(os.path.join(OUT, f"itos_p{protocol}.pkl"), "wb") as f:
      pickle.dump(itos, f, protocol=protocol)


def main():
  os.makedirs(OUT, exist_ok=True)
  save_lm("lm_v1_h10_legacy", make_model(8, 10, 3, v1=True, seed=1), legacy=True)
  save_lm("lm_v1_h12_legacy", make_model(8, 12, 2, v1=True, seed=2), legacy=True)
  save_lm("lm_v2_h12_zip", make_model(8, 12, 3, v1=False, seed=3), legacy=False, with_opt=True)
  save_lm("lm_v2_untied_zip", make_model(8, 6, 2, v1=False, tied=False, bias=False, seed=4),
          legacy=False)
  save_tensors()
  save_vocab()


if __name__ == "__main__":
  main()
