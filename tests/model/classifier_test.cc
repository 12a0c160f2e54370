// The classifier: masked concat pooling by hand, BPT3C against one full encoder pass, gradients
// only through the pooled window, shrinking batches (pad-first rows) against running each row
// alone, layer groups, gradual unfreezing, checkpoint names and encoder loading.
#include "model/classifier.h"
#include "infer/classifier.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>
#include <string>
#include <vector>

namespace ulmfit {
namespace {

constexpr int64_t kPad = 1;
constexpr int64_t kVocab = 20;

ClassifierOptions SmallOptions(double p = 0.0) {
  ClassifierOptions o;
  o.encoder.vocab_size = kVocab;
  o.encoder.emb_size = 4;
  o.encoder.hidden_size = 6;
  o.encoder.num_layers = 2;
  o.encoder.pad_id = kPad;
  o.encoder.embed_p = o.encoder.input_p = o.encoder.weight_p = o.encoder.hidden_p = p;
  o.num_classes = 3;
  o.hidden = 5;
  o.head_p = o.head_p2 = p;
  o.bptt = 4;
  o.max_len = 8;
  return o;
}

// A model whose head BatchNorms have non-trivial running statistics, so eval mode is not the
// identity there and per-row independence is really tested.
TextClassifier SmallModel(const ClassifierOptions& o) {
  TextClassifier model(o);
  torch::NoGradGuard no_grad;
  for (auto& b : model->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.2, 0.2);
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
  }
  return model;
}

// Tokens that are never the pad id: values in [lo, hi).
torch::Tensor Text(int64_t len, int64_t lo = 2, int64_t hi = kVocab) {
  return torch::randint(lo, hi, {len}, torch::kLong);
}

// A (seq_len, 1) column: `front` pads, the text, then `back` pads.
torch::Tensor Column(const torch::Tensor& text, int64_t front, int64_t back) {
  return torch::cat({torch::full({front}, kPad, torch::kLong), text,
                     torch::full({back}, kPad, torch::kLong)})
      .unsqueeze(1);
}

void ExpectClose(const torch::Tensor& actual, const torch::Tensor& expected,
                 const std::string& what, double atol = 1e-5) {
  ASSERT_TRUE(actual.defined()) << what;
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  EXPECT_TRUE(torch::allclose(actual, expected, /*rtol=*/1e-5, atol))
      << what << "\nactual:\n" << actual << "\nexpected:\n" << expected;
}

// ---------------------------------------------------------------------------------------------
// MaskedConcatPool

TEST(MaskedConcatPool, MatchesHandComputedExample) {
  // output (seq 4, batch 2, emb 2). Row 0 is pad-first (pad at t=0); row 1 has trailing pads at
  // t=2,3, so its last real step is t=1, not the final step. Pad values are large so that a pad
  // leaking into max, mean or last would show.
  const torch::Tensor output = torch::tensor({9.f, 9.f, 1.f, -2.f,    // t=0: row0 PAD, row1
                                              1.f, 2.f, 5.f, 0.f,     // t=1
                                              -1.f, 4.f, 8.f, 8.f,    // t=2: row1 PAD
                                              3.f, 0.f, -7.f, 9.f})   // t=3: row1 PAD
                                   .reshape({4, 2, 2});
  const torch::Tensor pad_mask =
      torch::tensor({1, 0, 0, 0, 0, 1, 0, 1}, torch::kLong).reshape({4, 2}).to(torch::kBool);
  // Row 0 real steps (1,2), (-1,4), (3,0): last (3,0), max (3,4), mean (1,2).
  // Row 1 real steps (1,-2), (5,0):        last (5,0), max (5,0), mean (3,-1).
  const torch::Tensor expected = torch::tensor({3.f, 0.f, 3.f, 4.f, 1.f, 2.f,  //
                                                5.f, 0.f, 5.f, 0.f, 3.f, -1.f})
                                     .reshape({2, 6});
  ExpectClose(MaskedConcatPool(output, pad_mask), expected, "pooled");

  // A row with no real step pools to zeros rather than -inf / NaN.
  const torch::Tensor all_pad = torch::ones({4, 2}, torch::kBool);
  ExpectClose(MaskedConcatPool(output, all_pad), torch::zeros({2, 6}), "all pads");
  EXPECT_THROW(MaskedConcatPool(output, pad_mask.slice(0, 0, 3)), c10::Error);
}

TEST(MaskedConcatPool, IgnoresValuesAndGradientsAtPads) {
  torch::manual_seed(1);
  const torch::Tensor output = torch::randn({7, 3, 5});
  torch::Tensor pad_mask = torch::rand({7, 3}) < 0.4;
  pad_mask.index_put_({3}, false);  // every row keeps at least one real step
  const torch::Tensor pooled = MaskedConcatPool(output, pad_mask);

  // Anything at the pads, including values larger than every real one, changes nothing.
  const torch::Tensor changed =
      torch::where(pad_mask.unsqueeze(-1), torch::randn({7, 3, 5}) * 100 + 50, output);
  ASSERT_FALSE(torch::equal(changed, output));
  ExpectClose(MaskedConcatPool(changed, pad_mask), pooled, "pads changed", 0);

  // ...and no gradient flows into them, while every row gets one.
  const torch::Tensor x = output.clone().requires_grad_(true);
  MaskedConcatPool(x, pad_mask).pow(2).sum().backward();
  const torch::Tensor grad_at_pads = x.grad().masked_select(pad_mask.unsqueeze(-1).expand_as(x));
  ASSERT_GT(grad_at_pads.numel(), 0);
  EXPECT_EQ(grad_at_pads.abs().max().item<float>(), 0.f);
  const torch::Tensor per_row = x.grad().abs().sum(2).sum(0);  // (batch,)
  EXPECT_TRUE(per_row.gt(0).all().item().toBool()) << per_row;
}

// ---------------------------------------------------------------------------------------------
// BPT3C

TEST(ClassifierBpt3c, ChunkedRunEqualsOneFullPassPooledOverTheLastChunks) {
  torch::manual_seed(2);
  const ClassifierOptions o = SmallOptions();  // bptt 4, max_len 8
  TextClassifier model = SmallModel(o);
  model->eval();
  torch::NoGradGuard no_grad;
  // Two rows of 19 real tokens: chunks start at 0, 4, 8, 12, 16; kept where 19 - i <= 8, i.e.
  // the chunks at 12 and 16, so positions 12..18 are pooled.
  constexpr int64_t kLen = 19, kWindowStart = 12;
  const torch::Tensor tokens = torch::stack({Text(kLen), Text(kLen)}, 1);
  const ClassifierOutput out = model->forward(tokens);

  // The encoder carries its state across chunks, so its outputs equal one uninterrupted pass;
  // only the pooled window differs.
  model->encoder()->ResetState();
  const torch::Tensor full = model->encoder()->forward(tokens).raw;  // (19, 2, emb)
  const torch::Tensor window = full.slice(0, kWindowStart);
  const torch::Tensor expected =
      MaskedConcatPool(window, torch::zeros({kLen - kWindowStart, 2}, torch::kBool));
  ExpectClose(out.features, expected, "features");
  ExpectClose(out.logits, model->head()->forward(expected), "logits");
  ExpectClose(out.raw, full.slice(0, 16), "raw = last chunk");
  // The window matters: pooling over more of the sequence gives something else.
  const torch::Tensor wider =
      MaskedConcatPool(full.slice(0, 8), torch::zeros({kLen - 8, 2}, torch::kBool));
  EXPECT_FALSE(torch::allclose(out.features, wider, 1e-4, 1e-4));
}

TEST(ClassifierBpt3c, GradientsReachOnlyTheKeptChunks) {
  torch::manual_seed(3);
  TextClassifier model = SmallModel(SmallOptions());
  model->eval();  // no dropout; gradients still flow
  // 19 tokens: positions 0..11 (dropped chunks 0, 4, 8) use ids 2..9 only, positions 12..18
  // (kept chunks 12, 16) use ids 10..19 only.
  const torch::Tensor early = torch::arange(2, 10, torch::kLong).repeat({2}).slice(0, 0, 12);
  const torch::Tensor late = torch::arange(10, 17, torch::kLong);
  const torch::Tensor tokens =
      torch::stack({torch::cat({early, late}), torch::cat({early.flip(0), late.flip(0)})}, 1);
  const ClassifierOutput out = model->forward(tokens);
  out.logits.pow(2).sum().backward();

  const torch::Tensor grad = model->encoder()->embedding_weight().grad();
  ASSERT_TRUE(grad.defined());
  const torch::Tensor row_norm = grad.abs().sum(1);  // (vocab,)
  for (int64_t id = 2; id < 10; ++id) {
    EXPECT_EQ(row_norm[id].item<float>(), 0.f) << "token " << id << " only in dropped chunks";
  }
  for (int64_t id = 10; id < 17; ++id) {
    EXPECT_GT(row_norm[id].item<float>(), 0.f) << "token " << id << " in kept chunks";
  }
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<float>(), 0.f) << p.key();
  }
}

TEST(ClassifierBpt3c, ShorterPadFirstRowsMatchRunningThemAlone) {
  torch::manual_seed(4);
  ClassifierOptions o = SmallOptions();  // bptt 4
  o.max_len = 12;                        // pool everything, so alone and batched pool alike
  TextClassifier model = SmallModel(o);
  model->eval();
  torch::NoGradGuard no_grad;
  // fastai pad_input_chunk layout, seq_len 10, bptt 4, rows longest first:
  //   row 0: 10 tokens                -> text at 0..9
  //   row 1:  7 tokens, (10-7)=3 pads -> text at 0..6, 3 pads after
  //   row 2:  5 tokens, (10-5)=5 pads -> one chunk of pads in front, text at 4..8, 1 pad after
  // In the last chunk (8..9) row 1 has ended while row 2 is still running: a batch of "rows
  // whose token at the chunk start is not pad" would be 2 and run rows 0 and 1 instead.
  const torch::Tensor t0 = Text(10), t1 = Text(7), t2 = Text(5);
  const torch::Tensor tokens =
      torch::cat({Column(t0, 0, 0), Column(t1, 0, 3), Column(t2, 4, 1)}, 1);
  ASSERT_EQ(tokens.sizes(), (std::vector<int64_t>{10, 3}));
  const ClassifierOutput batched = model->forward(tokens);

  const std::vector<torch::Tensor> texts = {t0, t1, t2};
  for (int64_t b = 0; b < 3; ++b) {
    const ClassifierOutput alone = model->forward(texts[b].unsqueeze(1));
    ExpectClose(batched.features.slice(0, b, b + 1), alone.features,
                "features of row " + std::to_string(b));
    ExpectClose(batched.logits.slice(0, b, b + 1), alone.logits,
                "logits of row " + std::to_string(b));
  }

  // Long document with max_len: the short row (inside the window) still matches.
  o.max_len = 8;
  TextClassifier windowed = SmallModel(o);
  windowed->eval();
  const torch::Tensor long_text = Text(14), short_text = Text(5);
  // seq 14: the short row gets (14-5)/4 = 2 chunks of pads in front, (14-5)%4 = 1 after.
  const torch::Tensor pair = torch::cat({Column(long_text, 0, 0), Column(short_text, 8, 1)}, 1);
  const ClassifierOutput both = windowed->forward(pair);
  const ClassifierOutput single = windowed->forward(short_text.unsqueeze(1));
  ExpectClose(both.logits.slice(0, 1, 2), single.logits, "short row next to a long one");
}

TEST(ClassifierBpt3c, RejectsUnsortedRowsAndBadShapes) {
  TextClassifier model = SmallModel(SmallOptions());
  model->eval();
  torch::NoGradGuard no_grad;
  // The short row (starting at chunk 1) comes before a row starting at chunk 0.
  const torch::Tensor unsorted = torch::cat({Column(Text(4), 4, 0), Column(Text(8), 0, 0)}, 1);
  EXPECT_THROW(model->forward(unsorted), c10::Error);
  EXPECT_THROW(model->forward(torch::full({8, 2}, kPad, torch::kLong)), c10::Error);
  EXPECT_THROW(model->forward(Text(8)), c10::Error);  // 1-D
  ClassifierOptions bad = SmallOptions();
  bad.max_len = 6;  // < 2*bptt - 1: a document's last tokens could fall outside the window
  EXPECT_THROW({ TextClassifier m(bad); }, c10::Error);
}

// ---------------------------------------------------------------------------------------------
// Parameters, layer groups, unfreezing, loading

TEST(ClassifierParams, NamesAreTheCheckpointKeys) {
  TextClassifier model(SmallOptions());
  std::set<std::string> names;
  for (const auto& p : model->named_parameters()) names.insert(p.key());
  const std::set<std::string> expected = {
      "encoder.emb.weight",
      "encoder.rnns.0.weight_ih", "encoder.rnns.0.weight_hh_raw",
      "encoder.rnns.0.bias_ih",   "encoder.rnns.0.bias_hh",
      "encoder.rnns.1.weight_ih", "encoder.rnns.1.weight_hh_raw",
      "encoder.rnns.1.bias_ih",   "encoder.rnns.1.bias_hh",
      "head.bn1.weight", "head.bn1.bias", "head.lin1.weight", "head.lin1.bias",
      "head.bn2.weight", "head.bn2.bias", "head.lin2.weight", "head.lin2.bias"};
  EXPECT_EQ(names, expected);
  std::set<std::string> buffers;
  for (const auto& b : model->named_buffers()) buffers.insert(b.key());
  EXPECT_TRUE(buffers.count("head.bn1.running_mean"));
  EXPECT_TRUE(buffers.count("head.bn2.running_var"));
  EXPECT_EQ(model->head()->lin1->weight.sizes(), (std::vector<int64_t>{5, 12}));  // 3*emb -> 5
  EXPECT_EQ(model->head()->lin2->weight.sizes(), (std::vector<int64_t>{3, 5}));
}

TEST(ClassifierParams, LayerGroupsCoverEveryParameterOnce) {
  const ClassifierOptions o = SmallOptions();
  TextClassifier model(o);
  const auto groups = model->LayerGroups();
  ASSERT_EQ(static_cast<int64_t>(groups.size()), o.encoder.num_layers + 2);
  std::vector<const void*> seen;
  for (const auto& g : groups) {
    EXPECT_FALSE(g.empty());
    for (const auto& t : g) seen.push_back(t.unsafeGetTensorImpl());
  }
  std::vector<const void*> all;
  for (const auto& p : model->parameters()) all.push_back(p.unsafeGetTensorImpl());
  std::sort(seen.begin(), seen.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(seen, all);  // same multiset: each parameter exactly once
  // Order: [embedding], [rnn0], [rnn1], [head].
  ASSERT_EQ(groups[0].size(), 1u);
  EXPECT_TRUE(groups[0][0].is_same(model->encoder()->embedding_weight()));
  EXPECT_TRUE(groups[1][0].is_same(model->encoder()->rnn(0)->weight_ih));
  EXPECT_TRUE(groups[2][0].is_same(model->encoder()->rnn(1)->weight_ih));
  EXPECT_EQ(groups.back().size(), model->head()->parameters().size());
}

TEST(ClassifierParams, GradualUnfreezingTrainsOnlyTheHead) {
  torch::manual_seed(5);
  TextClassifier model(SmallOptions(/*p=*/0.2));
  model->train();  // dropouts on, batch statistics (batch of 3)
  const auto groups = model->LayerGroups();
  for (size_t g = 0; g + 1 < groups.size(); ++g) {
    for (auto t : groups[g]) t.requires_grad_(false);
  }
  const torch::Tensor tokens = torch::stack({Text(11), Text(11), Text(11)}, 1);
  const ClassifierOutput out = model->forward(tokens);
  torch::nn::functional::cross_entropy(out.logits, torch::tensor({0, 1, 2}, torch::kLong))
      .backward();
  for (const auto& p : model->named_parameters()) {
    const bool head = p.key().rfind("head.", 0) == 0;
    const torch::Tensor& grad = p.value().grad();
    if (head) {
      ASSERT_TRUE(grad.defined()) << p.key();
      EXPECT_GT(grad.abs().sum().item<float>(), 0.f) << p.key();
    } else {
      EXPECT_TRUE(!grad.defined() || grad.abs().sum().item<float>() == 0.f) << p.key();
    }
  }
  // Unfreezing one more group (the last LSTM) makes it train too.
  for (auto t : groups[groups.size() - 2]) t.requires_grad_(true);
  model->zero_grad();
  torch::nn::functional::cross_entropy(model->forward(tokens).logits,
                                       torch::tensor({0, 1, 2}, torch::kLong))
      .backward();
  EXPECT_GT(model->encoder()->rnn(1)->weight_ih.grad().abs().sum().item<float>(), 0.f);
  const torch::Tensor emb_grad = model->encoder()->embedding_weight().grad();
  EXPECT_TRUE(!emb_grad.defined() || emb_grad.abs().sum().item<float>() == 0.f);
}

TEST(ClassifierParams, LoadEncoderFromLanguageModel) {
  torch::manual_seed(6);
  const ClassifierOptions o = SmallOptions();
  LanguageModelOptions lm_opts;
  lm_opts.encoder = o.encoder;
  LanguageModel lm(lm_opts);
  TextClassifier model(o);
  ASSERT_FALSE(torch::equal(model->encoder()->embedding_weight(),
                            lm->encoder()->embedding_weight()));
  const torch::Tensor head_before = model->head()->lin1->weight.clone();
  model->LoadEncoderFrom(lm);
  const auto lm_params = lm->named_parameters();
  int copied = 0;
  for (const auto& p : model->named_parameters()) {
    if (p.key().rfind("encoder.", 0) != 0) continue;
    EXPECT_TRUE(torch::equal(p.value(), lm_params[p.key()])) << p.key();
    EXPECT_FALSE(p.value().is_same(lm_params[p.key()])) << "copied, not shared: " << p.key();
    ++copied;
  }
  EXPECT_EQ(copied, 9);
  EXPECT_TRUE(torch::equal(model->head()->lin1->weight, head_before));

  // A different vocabulary is a clear error naming the parameter.
  LanguageModelOptions other = lm_opts;
  other.encoder.vocab_size = kVocab + 3;
  try {
    model->LoadEncoderFrom(LanguageModel(other));
    FAIL() << "expected a shape error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.emb.weight"), std::string::npos) << e.what();
  }
}

TEST(ClassifierOptions, FromConfigScalesTheClassifierDropouts) {
  ModelConfig model;
  model.emb_size = 8;
  model.hidden_size = 16;
  model.num_layers = 2;
  model.drop_mult = 7.0;  // the LM's multiplier must not leak in
  ClassifierConfig clas;  // dropout {0.05, 0.4, 0.5, 0.3, 0.4}, drop_mult 0.5
  clas.hidden = 33;
  clas.head_dropout = 0.15;
  clas.bptt = 10;
  clas.max_len = 200;
  const ClassifierOptions o = ClassifierOptions::FromConfig(model, clas, 100, 4, 1);
  EXPECT_EQ(o.encoder.vocab_size, 100);
  EXPECT_EQ(o.encoder.emb_size, 8);
  EXPECT_EQ(o.encoder.hidden_size, 16);
  EXPECT_EQ(o.encoder.num_layers, 2);
  EXPECT_EQ(o.encoder.pad_id, 1);
  EXPECT_DOUBLE_EQ(o.encoder.embed_p, 0.025);
  EXPECT_DOUBLE_EQ(o.encoder.input_p, 0.2);
  EXPECT_DOUBLE_EQ(o.encoder.weight_p, 0.25);
  EXPECT_DOUBLE_EQ(o.encoder.hidden_p, 0.15);
  EXPECT_DOUBLE_EQ(o.head_p, 0.2);
  EXPECT_DOUBLE_EQ(o.head_p2, 0.15);
  EXPECT_EQ(o.num_classes, 4);
  EXPECT_EQ(o.hidden, 33);
  EXPECT_EQ(o.bptt, 10);
  EXPECT_EQ(o.max_len, 200);
}

}  // namespace
}  // namespace ulmfit

namespace ulmfit {
namespace {

// The bidirectional ensemble averages the members' probabilities, then takes the argmax.
TEST(ClassifierEnsemble, AveragesProbabilitiesHandComputed) {
  ClassifierEvaluation forward, backward;
  forward.probs = {{0.9f, 0.1f}, {0.4f, 0.6f}};
  backward.probs = {{0.3f, 0.7f}, {0.1f, 0.9f}};
  const ClassifierEvaluation mean = AverageProbabilities({forward, backward});
  ASSERT_EQ(mean.probs.size(), 2u);
  EXPECT_NEAR(mean.probs[0][0], 0.6f, 1e-6);
  EXPECT_NEAR(mean.probs[0][1], 0.4f, 1e-6);
  EXPECT_NEAR(mean.probs[1][0], 0.25f, 1e-6);
  EXPECT_NEAR(mean.probs[1][1], 0.75f, 1e-6);
  EXPECT_EQ(mean.predicted, (std::vector<int64_t>{0, 1}));  // backward alone would say 1, 1
}

}  // namespace
}  // namespace ulmfit
