// AWD-LSTM: numerics against PyTorch (tests/fixtures/awd_lstm_reference.txt, written by
// scripts/make_lstm_fixtures.py), hidden-state carrying, dropout semantics, parameter bookkeeping.
#include "model/awd_lstm.h"
#include "model/lstm_layer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace ulmfit {
namespace {

using Fixture = std::map<std::string, torch::Tensor>;

// Reads the plain-text tensor file: "<name> <f|i> <ndim> <dims...>" then one line of values.
Fixture LoadFixture() {
  const std::string path =
      std::string(ULMFIT_SOURCE_DIR) + "/tests/fixtures/awd_lstm_reference.txt";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  Fixture fx;
  std::string header, values;
  while (std::getline(in, header)) {
    if (header.empty() || header[0] == '#') continue;
    std::getline(in, values);
    std::istringstream hs(header), vs(values);
    std::string name, kind;
    int64_t ndim = 0;
    hs >> name >> kind >> ndim;
    std::vector<int64_t> shape(ndim);
    int64_t numel = 1;
    for (auto& d : shape) {
      hs >> d;
      numel *= d;
    }
    torch::Tensor t;
    if (kind == "i") {
      std::vector<int64_t> v(numel);
      for (auto& x : v) vs >> x;
      t = torch::tensor(v, torch::kLong);
    } else {
      std::vector<float> v(numel);
      for (auto& x : v) vs >> x;
      t = torch::tensor(v, torch::kFloat);
    }
    EXPECT_FALSE(vs.fail()) << "short value line for " << name;
    fx[name] = t.reshape(shape);
  }
  return fx;
}

const Fixture& Ref() {
  static const Fixture* fx = new Fixture(LoadFixture());
  return *fx;
}

const torch::Tensor& Get(const std::string& name) {
  auto it = Ref().find(name);
  if (it == Ref().end()) throw std::runtime_error("fixture lacks " + name);
  return it->second;
}

LanguageModelOptions RefOptions() {
  const torch::Tensor cfg = Get("config");  // vocab, emb, hid, layers, pad
  LanguageModelOptions o;
  o.encoder.vocab_size = cfg[0].item<int64_t>();
  o.encoder.emb_size = cfg[1].item<int64_t>();
  o.encoder.hidden_size = cfg[2].item<int64_t>();
  o.encoder.num_layers = cfg[3].item<int64_t>();
  o.encoder.pad_id = cfg[4].item<int64_t>();
  return o;  // every dropout 0
}

// The reference model with the fixture's weights copied in by checkpoint name.
LanguageModel RefModel() {
  LanguageModel model(RefOptions());
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) p.value().copy_(Get(p.key()));
  return model;
}

torch::Tensor CrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                              targets.reshape({-1}));
}

void ExpectClose(const torch::Tensor& actual, const torch::Tensor& expected,
                 const std::string& what, double atol = 1e-5, double rtol = 1e-4) {
  ASSERT_TRUE(actual.defined()) << what << " undefined";
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const torch::Tensor a = actual.to(torch::kDouble), e = expected.to(torch::kDouble);
  const double diff = (a - e).abs().max().item<double>();
  EXPECT_LE(diff, atol + rtol * e.abs().max().item<double>()) << what << ": max diff " << diff;
}

LanguageModelOptions SmallOptions(double p) {
  LanguageModelOptions o;
  o.encoder.vocab_size = 13;
  o.encoder.emb_size = 4;
  o.encoder.hidden_size = 6;
  o.encoder.num_layers = 3;
  o.encoder.embed_p = o.encoder.input_p = o.encoder.weight_p = o.encoder.hidden_p = p;
  o.output_p = p;
  return o;
}

torch::Tensor RandomTokens(int64_t seq, int64_t batch, int64_t vocab) {
  return torch::randint(vocab, {seq, batch}, torch::kLong);
}

// ---------------------------------------------------------------------------------------------
// Numerics against PyTorch

TEST(AwdLstmNumerics, ParameterNamesMatchTheCheckpointFormat) {
  LanguageModel model(RefOptions());
  std::set<std::string> names;
  for (const auto& p : model->named_parameters()) {
    names.insert(p.key());
    ASSERT_EQ(p.value().sizes(), Get(p.key()).sizes()) << p.key();
  }
  const std::set<std::string> expected = {
      "encoder.emb.weight",           "decoder.bias",
      "encoder.rnns.0.weight_ih",     "encoder.rnns.0.weight_hh_raw",
      "encoder.rnns.0.bias_ih",       "encoder.rnns.0.bias_hh",
      "encoder.rnns.1.weight_ih",     "encoder.rnns.1.weight_hh_raw",
      "encoder.rnns.1.bias_ih",       "encoder.rnns.1.bias_hh",
      "encoder.rnns.2.weight_ih",     "encoder.rnns.2.weight_hh_raw",
      "encoder.rnns.2.bias_ih",       "encoder.rnns.2.bias_hh"};
  EXPECT_EQ(names, expected);
}

TEST(AwdLstmNumerics, ForwardBackwardAndCarriedStateMatchPyTorch) {
  LanguageModel model = RefModel();
  model->train();  // dropouts are 0, so train mode must be exact too

  // Window 1, from zeros: CE + AR/TAR.
  LmOutput out1 = model->forward(Get("tokens1"));
  torch::Tensor loss1 = CrossEntropy(out1.logits, Get("targets1")) + ArTarLoss(out1, 2.0, 1.0);
  ExpectClose(out1.logits, Get("logits1"), "logits1");
  ExpectClose(out1.raw, Get("raw1"), "raw1");
  ExpectClose(loss1.reshape({1}), Get("loss1"), "loss1");
  loss1.backward();
  for (const auto& p : model->named_parameters()) {
    ExpectClose(p.value().grad(), Get("grad1." + p.key()), "grad1." + p.key());
  }
  std::vector<torch::Tensor> state = model->encoder()->GetState();
  ASSERT_EQ(state.size(), 6u);
  for (int l = 0; l < 3; ++l) {
    ExpectClose(state[2 * l], Get("state1.h" + std::to_string(l)), "h" + std::to_string(l));
    ExpectClose(state[2 * l + 1], Get("state1.c" + std::to_string(l)), "c" + std::to_string(l));
    EXPECT_FALSE(state[2 * l].requires_grad());
  }

  // Window 2 carries the state: its logits are the tail of one 9-step PyTorch run, and its
  // gradients stop at the window boundary (truncated BPTT).
  model->zero_grad();
  LmOutput out2 = model->forward(Get("tokens2"));
  ExpectClose(out2.logits, Get("logits_concat").slice(0, 5), "logits2 vs concatenated run");
  torch::Tensor loss2 = CrossEntropy(out2.logits, Get("targets2"));
  ExpectClose(loss2.reshape({1}), Get("loss2"), "loss2");
  loss2.backward();
  for (const auto& p : model->named_parameters()) {
    ExpectClose(p.value().grad(), Get("grad2." + p.key()), "grad2." + p.key());
  }
}

TEST(AwdLstmNumerics, ResetAndSetStateReproduceTheReference) {
  LanguageModel model = RefModel();
  model->eval();
  torch::NoGradGuard no_grad;
  model->forward(Get("tokens2"));  // some unrelated state
  model->encoder()->ResetState();
  ExpectClose(model->forward(Get("tokens1")).logits, Get("logits1"), "after ResetState");

  std::vector<torch::Tensor> state;
  for (int l = 0; l < 3; ++l) {
    state.push_back(Get("state1.h" + std::to_string(l)));
    state.push_back(Get("state1.c" + std::to_string(l)));
  }
  model->encoder()->ResetState();
  model->encoder()->SetState(state);
  ExpectClose(model->forward(Get("tokens2")).logits, Get("logits_concat").slice(0, 5),
              "after SetState");
  EXPECT_THROW(model->encoder()->SetState({state[0]}), c10::Error);
}

TEST(AwdLstmState, BatchSizeChangeSlicesOrZeroPadsTheState) {
  LanguageModel model = RefModel();
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor tokens1 = Get("tokens1"), tokens2 = Get("tokens2");
  const torch::Tensor expected2 = Get("logits_concat").slice(0, 5);  // (4, 3, V)

  // Smaller batch: the first two streams keep their state.
  model->forward(tokens1);
  torch::Tensor sliced = model->forward(tokens2.slice(1, 0, 2)).logits;
  ExpectClose(sliced, expected2.slice(1, 0, 2), "sliced batch");

  // Larger batch: old streams keep their state, the new one starts from zeros.
  model->encoder()->ResetState();
  model->forward(tokens1);
  torch::Tensor extra = tokens2.slice(1, 0, 1);
  torch::Tensor padded = model->forward(torch::cat({tokens2, extra}, 1)).logits;
  ExpectClose(padded.slice(1, 0, 3), expected2, "padded batch, old streams");
  model->encoder()->ResetState();
  torch::Tensor fresh = model->forward(extra).logits;
  ExpectClose(padded.slice(1, 3, 4), fresh, "padded batch, new stream");
}

// Our CPU LSTM function against libtorch's kernel: outputs and the gradients of every input,
// through the output sequence and through h_T / c_T.
void CheckLstmLayerAgainstLibtorch(int64_t steps, torch::Dtype dtype, double atol,
                                   int64_t h = 5) {
  torch::manual_seed(steps);
  const int64_t batch = 3, in = 4;
  auto opts = torch::TensorOptions().dtype(dtype);
  std::vector<torch::Tensor> inputs = {
      torch::randn({steps, batch, in}, opts), torch::randn({1, batch, h}, opts),
      torch::randn({1, batch, h}, opts),      torch::randn({4 * h, in}, opts),
      torch::randn({4 * h, h}, opts) * 0.5,   torch::randn({4 * h}, opts),
      torch::randn({4 * h}, opts)};
  const torch::Tensor r_out = torch::randn({steps, batch, h}, opts);
  const torch::Tensor r_h = torch::randn({1, batch, h}, opts);
  const torch::Tensor r_c = torch::randn({1, batch, h}, opts);
  auto run = [&](bool ours) {
    std::vector<torch::Tensor> leaves;
    for (const auto& t : inputs) leaves.push_back(t.clone().requires_grad_(true));
    auto fn = ours ? LstmLayer : LstmLayerLibtorch;
    auto [out, h_n, c_n] =
        fn(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], leaves[6]);
    ((out * r_out).sum() + (h_n * r_h).sum() + (c_n * r_c).sum()).backward();
    std::vector<torch::Tensor> results = {out.detach(), h_n.detach(), c_n.detach()};
    for (const auto& l : leaves) results.push_back(l.grad());
    return results;
  };
  const auto ours = run(true), ref = run(false);
  const char* names[] = {"out", "h_n", "c_n", "dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh"};
  for (size_t i = 0; i < ref.size(); ++i) {
    ExpectClose(ours[i], ref[i], std::string(names[i]) + " T=" + std::to_string(steps), atol,
                atol);
  }
}

TEST(AwdLstmLayer, CpuFunctionMatchesLibtorchInDouble) {
  CheckLstmLayerAgainstLibtorch(9, torch::kDouble, 1e-9);
  CheckLstmLayerAgainstLibtorch(1, torch::kDouble, 1e-9);
}

TEST(AwdLstmLayer, CpuFunctionMatchesLibtorchInFloat) {
  CheckLstmLayerAgainstLibtorch(6, torch::kFloat, 1e-5);
  // Two whole 16-float vectors and a 5-float rest per gate: the float kernel's both paths.
  CheckLstmLayerAgainstLibtorch(6, torch::kFloat, 1e-5, /*h=*/37);
}

TEST(AwdLstmLoss, ArTarMatchesHandComputedValue) {
  LmOutput out;
  // raw: (seq 3, batch 1, emb 2)
  out.raw = torch::tensor({1.f, 2.f, 3.f, 5.f, 3.f, 5.f}).reshape({3, 1, 2});
  out.dropped = torch::tensor({0.f, 2.f, 0.f, 0.f, 4.f, 0.f}).reshape({3, 1, 2});
  // AR: mean(0,4,0,0,16,0) = 20/6; TAR: diffs (2,3), (0,0) -> mean(4,9,0,0) = 13/4.
  const double expected = 2.0 * 20.0 / 6.0 + 0.5 * 13.0 / 4.0;
  EXPECT_NEAR(ArTarLoss(out, 2.0, 0.5).item<double>(), expected, 1e-6);
  EXPECT_NEAR(ArTarLoss(out, 0.0, 0.0).item<double>(), 0.0, 1e-12);
  out.raw = out.raw.slice(0, 0, 1);  // one step: no TAR term, no NaN
  out.dropped = out.dropped.slice(0, 0, 1);
  EXPECT_NEAR(ArTarLoss(out, 1.0, 1.0).item<double>(), 2.0, 1e-6);
}

TEST(AwdLstmCuda, MatchesPyTorchOnTheGpuAndTrainsWithDropouts) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const torch::Device cuda(torch::kCUDA);
  // cuDNN's default TF32 would cost ~3 digits; this compares against float32 PyTorch on CPU.
  const bool tf32 = at::globalContext().allowTF32CuDNN();
  at::globalContext().setAllowTF32CuDNN(false);
  LanguageModel model = RefModel();
  model->to(cuda);
  model->train();
  ASSERT_TRUE(model->decoder()->weight.is_cuda()) << "tied decoder weight left behind";
  EXPECT_TRUE(model->decoder()->weight.is_same(model->encoder()->embedding_weight()));
  LmOutput out1 = model->forward(Get("tokens1").to(cuda));
  torch::Tensor loss1 =
      CrossEntropy(out1.logits, Get("targets1").to(cuda)) + ArTarLoss(out1, 2.0, 1.0);
  loss1.backward();
  ExpectClose(out1.logits.cpu(), Get("logits1"), "cuda logits1", 1e-4);
  for (const auto& p : model->named_parameters()) {
    ExpectClose(p.value().grad().cpu(), Get("grad1." + p.key()), "cuda grad1." + p.key(), 1e-4);
  }
  torch::NoGradGuard no_grad;
  LmOutput out2 = model->forward(Get("tokens2").to(cuda));
  ExpectClose(out2.logits.cpu(), Get("logits_concat").slice(0, 5), "cuda carried state", 1e-4);
  at::globalContext().setAllowTF32CuDNN(tf32);
}

TEST(AwdLstmCuda, WeightDropOnCudnnKeepsRawParameterAndGetsGradients) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(8);
  LanguageModel model(SmallOptions(0.3));
  model->to(torch::kCUDA);
  model->train();
  const torch::Tensor raw = model->encoder()->rnn(1)->weight_hh_raw.detach().clone();
  torch::Tensor tokens = RandomTokens(6, 4, 13).to(torch::kCUDA);
  LmOutput out = model->forward(tokens);
  (out.logits.pow(2).mean() + ArTarLoss(out, 2.0, 1.0)).backward();
  EXPECT_TRUE(torch::equal(model->encoder()->rnn(1)->weight_hh_raw, raw));
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
}

#if TORCH_VERSION_MAJOR >= 2
class CapturingWarningHandler : public c10::WarningHandler {
 public:
  void process(const c10::Warning& warning) override { messages.push_back(warning.msg()); }
  std::vector<std::string> messages;
};
#endif

TEST(AwdLstmCuda, NoPerCallCudnnFlatWeightWarning) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
#if TORCH_VERSION_MAJOR < 2
  GTEST_SKIP() << "the filter exists for libtorch 2.x";
#else
  auto count = [](const std::vector<std::string>& msgs) {
    int n = 0;
    for (const auto& m : msgs) n += m.find("single contiguous chunk") != std::string::npos;
    return n;
  };
  WeightDropLstm lstm(3, 5, 0.5);
  lstm->to(torch::kCUDA);
  lstm->train();
  torch::Tensor x = torch::randn({4, 2, 3}, torch::kCUDA);
  torch::Tensor h0 = torch::zeros({1, 2, 5}, torch::kCUDA);
  CapturingWarningHandler handler;
  c10::WarningUtils::WarningHandlerGuard guard(&handler);
  // The plain call with a separate W_hh does warn (so the capture works) ...
  torch::lstm(x, {h0, h0},
              {lstm->weight_ih, lstm->weight_hh_raw * 1, lstm->bias_ih, lstm->bias_hh}, true, 1,
              0.0, true, false, false);
  EXPECT_EQ(count(handler.messages), 1);
  // ... and the module's call does not, every time.
  for (int i = 0; i < 3; ++i) lstm->forward(x, h0, h0);
  EXPECT_EQ(count(handler.messages), 1);
#endif
}

// ---------------------------------------------------------------------------------------------
// Dropouts

TEST(AwdLstmDropout, EmbeddingDropoutZeroesWholeRowsAndScalesTheRest) {
  torch::manual_seed(3);
  AwdLstmOptions o = SmallOptions(0).encoder;
  o.vocab_size = 200;
  o.embed_p = 0.5;
  AwdLstm enc(o);
  enc->train();
  // Each token id appears several times (10 steps x 40 streams over 200 ids).
  torch::Tensor tokens = RandomTokens(10, 40, 200);
  torch::Tensor x = enc->Embed(tokens);                         // (10, 40, 4)
  torch::Tensor plain = torch::embedding(enc->embedding_weight(), tokens, o.pad_id);
  torch::Tensor ratio = (x / plain).reshape({-1, 4});           // per row: 0 or 2
  torch::Tensor flat_tokens = tokens.reshape({-1});
  int dropped_ids = 0, kept_ids = 0;
  std::map<int64_t, double> seen;  // the same id gets the same factor everywhere
  for (int64_t i = 0; i < flat_tokens.size(0); ++i) {
    const torch::Tensor row = ratio[i];
    const double f = row[0].item<double>();
    ASSERT_TRUE(std::abs(f) < 1e-6 || std::abs(f - 2.0) < 1e-5) << f;
    ASSERT_TRUE(torch::allclose(row, torch::full_like(row, f))) << "not a whole row";
    const int64_t id = flat_tokens[i].item<int64_t>();
    auto [it, inserted] = seen.emplace(id, f);
    if (inserted) {
      (f == 0 ? dropped_ids : kept_ids)++;
    } else {
      ASSERT_EQ(it->second, f) << "token " << id << " got different masks";
    }
  }
  EXPECT_GT(dropped_ids, 20);
  EXPECT_GT(kept_ids, 20);

  enc->eval();
  EXPECT_TRUE(torch::equal(enc->Embed(tokens), plain));
}

TEST(AwdLstmDropout, LockedDropoutMaskIsConstantOverTime) {
  torch::manual_seed(4);
  torch::Tensor x = torch::rand({7, 5, 30}) + 0.5;  // (seq, batch, features), no zeros
  torch::Tensor y = LockedDropout(x, 0.4, /*training=*/true);
  torch::Tensor factor = y / x;                      // 0 or 1/0.6
  for (int64_t t = 1; t < 7; ++t) {
    EXPECT_TRUE(torch::allclose(factor[t], factor[0])) << "mask differs at t=" << t;
  }
  torch::Tensor f0 = factor[0];
  const double scale = 1.0 / 0.6;
  EXPECT_TRUE(((f0.abs() < 1e-6) | ((f0 - scale).abs() < 1e-5)).all().item<bool>());
  const double frac_dropped = (f0.abs() < 1e-6).to(torch::kFloat).mean().item<double>();
  EXPECT_GT(frac_dropped, 0.2);
  EXPECT_LT(frac_dropped, 0.6);
  // Different batch elements get different masks.
  EXPECT_FALSE(torch::equal(f0[0], f0[1]));
  EXPECT_TRUE(torch::equal(LockedDropout(x, 0.4, /*training=*/false), x));
  EXPECT_TRUE(torch::equal(LockedDropout(x, 0.0, /*training=*/true), x));
}

TEST(AwdLstmDropout, OutputDropoutIsVariationalAndFeedsTheDecoder) {
  torch::manual_seed(5);
  LanguageModelOptions o = SmallOptions(0);
  o.output_p = 0.5;
  LanguageModel model(o);
  model->train();
  LmOutput out = model->forward(RandomTokens(6, 8, 13));
  torch::Tensor dropped_pos = (out.dropped == 0);          // (6, 8, 4)
  for (int64_t t = 1; t < 6; ++t) EXPECT_TRUE(torch::equal(dropped_pos[t], dropped_pos[0]));
  EXPECT_TRUE(dropped_pos.any().item<bool>());
  torch::Tensor kept = ~dropped_pos;
  EXPECT_TRUE(torch::allclose(out.dropped.masked_select(kept), 2 * out.raw.masked_select(kept)));
  ExpectClose(out.logits, torch::linear(out.dropped, model->encoder()->embedding_weight(),
                                        model->decoder()->bias),
              "decoder input is the dropped output");
}

TEST(AwdLstmDropout, WeightDropChangesWhhPerCallButKeepsTheRawParameter) {
  torch::manual_seed(6);
  WeightDropLstm lstm(3, 5, /*weight_p=*/0.5);
  lstm->train();
  const torch::Tensor raw_before = lstm->weight_hh_raw.detach().clone();
  torch::Tensor x = torch::randn({4, 2, 3});
  torch::Tensor h0 = torch::randn({1, 2, 5}), c0 = torch::randn({1, 2, 5});
  torch::Tensor y1 = std::get<0>(lstm->forward(x, h0, c0));
  torch::Tensor y2 = std::get<0>(lstm->forward(x, h0, c0));
  EXPECT_FALSE(torch::allclose(y1, y2)) << "same W_hh mask twice";
  EXPECT_TRUE(torch::equal(lstm->weight_hh_raw, raw_before)) << "raw W_hh modified";

  y1.pow(2).sum().backward();
  torch::Tensor g = lstm->weight_hh_raw.grad();
  ASSERT_TRUE(g.defined());
  // DropConnect is element-wise: dropped entries get exactly zero gradient, inside rows that
  // still have non-zero entries.
  torch::Tensor zero = (g == 0);
  const double frac = zero.to(torch::kFloat).mean().item<double>();
  EXPECT_GT(frac, 0.3);
  EXPECT_LT(frac, 0.7);
  EXPECT_TRUE((zero.any(1) & (~zero).any(1)).any().item<bool>());

  // Eval: no dropout, deterministic, equal to the plain LSTM on the raw weight.
  lstm->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor e1 = std::get<0>(lstm->forward(x, h0, c0));
  torch::Tensor e2 = std::get<0>(lstm->forward(x, h0, c0));
  EXPECT_TRUE(torch::equal(e1, e2));
  torch::Tensor plain = std::get<0>(torch::lstm(
      x, {h0, c0}, {lstm->weight_ih, raw_before, lstm->bias_ih, lstm->bias_hh}, true, 1, 0.0,
      false, false, false));
  EXPECT_TRUE(torch::allclose(e1, plain));
}

TEST(AwdLstmDropout, EvalModeIsDeterministicAndDropoutFree) {
  torch::manual_seed(7);
  LanguageModel noisy(SmallOptions(0.5));
  LanguageModel clean(SmallOptions(0.0));
  {
    torch::NoGradGuard no_grad;
    auto src = noisy->named_parameters();
    for (auto& p : clean->named_parameters()) p.value().copy_(src[p.key()]);
  }
  torch::Tensor tokens = RandomTokens(5, 3, 13);
  noisy->train();
  torch::Tensor train_out = noisy->forward(tokens).logits;
  noisy->eval();
  noisy->encoder()->ResetState();
  torch::Tensor e1 = noisy->forward(tokens).logits;
  noisy->encoder()->ResetState();
  torch::Tensor e2 = noisy->forward(tokens).logits;
  torch::Tensor reference = clean->forward(tokens).logits;  // train mode, but every p is 0
  EXPECT_TRUE(torch::equal(e1, e2));
  EXPECT_TRUE(torch::allclose(e1, reference));
  EXPECT_FALSE(torch::allclose(train_out, reference)) << "train mode applied no dropout";
}

TEST(AwdLstmDropout, MasksComeFromTorchRngSoSeedsReproduceRuns) {
  LanguageModel model(SmallOptions(0.3));
  model->train();
  torch::Tensor tokens = RandomTokens(5, 3, 13);
  torch::manual_seed(11);
  torch::Tensor a = model->forward(tokens).logits;
  model->encoder()->ResetState();
  torch::manual_seed(11);
  torch::Tensor b = model->forward(tokens).logits;
  model->encoder()->ResetState();
  torch::Tensor c = model->forward(tokens).logits;  // fresh masks
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
}

// ---------------------------------------------------------------------------------------------
// Parameter bookkeeping

std::set<const void*> Impls(const std::vector<torch::Tensor>& ts) {
  std::set<const void*> out;
  for (const auto& t : ts) out.insert(t.unsafeGetTensorImpl());
  return out;
}

TEST(AwdLstmParams, TiedWeightIsListedOnce) {
  LanguageModel tied(SmallOptions(0));
  const auto params = tied->parameters();
  EXPECT_EQ(params.size(), 2u + 4u * 3u);  // emb, decoder bias, 4 per layer
  EXPECT_EQ(Impls(params).size(), params.size());
  EXPECT_TRUE(tied->decoder()->weight.is_same(tied->encoder()->embedding_weight()));

  LanguageModelOptions o = SmallOptions(0);
  o.tie_weights = false;
  o.out_bias = false;
  LanguageModel untied(o);
  auto named = untied->named_parameters();
  EXPECT_NE(named.find("decoder.weight"), nullptr);
  EXPECT_EQ(named.find("decoder.bias"), nullptr);
  EXPECT_FALSE(untied->decoder()->weight.is_same(untied->encoder()->embedding_weight()));
  EXPECT_EQ(Impls(untied->parameters()).size(), 2u + 4u * 3u);
}

TEST(AwdLstmParams, LayerGroupsCoverEveryParameterOnce) {
  for (bool tie : {true, false}) {
    LanguageModelOptions o = SmallOptions(0);
    o.tie_weights = tie;
    LanguageModel model(o);
    auto groups = model->LayerGroups();
    ASSERT_EQ(groups.size(), 4u);  // rnn0, rnn1, rnn2, embedding + decoder
    std::vector<torch::Tensor> all;
    for (const auto& g : groups) all.insert(all.end(), g.begin(), g.end());
    EXPECT_EQ(all.size(), Impls(all).size()) << "a parameter in two groups";
    EXPECT_EQ(Impls(all), Impls(model->parameters()));
    for (int l = 0; l < 3; ++l) {
      EXPECT_EQ(Impls(groups[l]), Impls(model->encoder()->rnn(l)->parameters())) << l;
    }
    EXPECT_EQ(Impls(groups[3]).count(model->encoder()->embedding_weight().unsafeGetTensorImpl()),
              1u);
    EXPECT_EQ(Impls(groups[3]).count(model->decoder()->bias.unsafeGetTensorImpl()), 1u);
  }
  LanguageModel model(SmallOptions(0));
  auto enc_groups = model->encoder()->LayerGroups();  // classifier order
  ASSERT_EQ(enc_groups.size(), 4u);
  ASSERT_EQ(enc_groups[0].size(), 1u);
  EXPECT_TRUE(enc_groups[0][0].is_same(model->encoder()->embedding_weight()));
}

TEST(AwdLstmParams, FromConfigAppliesDropMultAndSizes) {
  ModelConfig m;
  m.drop_mult = 0.5;
  m.tie_weights = false;
  LanguageModelOptions o = LanguageModelOptions::FromConfig(m, 1000, 1);
  EXPECT_EQ(o.encoder.vocab_size, 1000);
  EXPECT_EQ(o.encoder.emb_size, 400);
  EXPECT_EQ(o.encoder.hidden_size, 1152);
  EXPECT_EQ(o.encoder.num_layers, 3);
  EXPECT_EQ(o.encoder.pad_id, 1);
  EXPECT_DOUBLE_EQ(o.encoder.embed_p, 0.01);
  EXPECT_DOUBLE_EQ(o.encoder.input_p, 0.125);
  EXPECT_DOUBLE_EQ(o.encoder.weight_p, 0.1);
  EXPECT_DOUBLE_EQ(o.encoder.hidden_p, 0.075);
  EXPECT_DOUBLE_EQ(o.output_p, 0.05);
  EXPECT_FALSE(o.tie_weights);
  EXPECT_TRUE(o.out_bias);
}

TEST(AwdLstmParams, LayerSizesFollowFastai) {
  LanguageModel model(SmallOptions(0));  // emb 4, hidden 6, 3 layers
  auto enc = model->encoder();
  EXPECT_EQ(enc->rnn(0)->weight_ih.sizes(), (std::vector<int64_t>{24, 4}));
  EXPECT_EQ(enc->rnn(1)->weight_hh_raw.sizes(), (std::vector<int64_t>{24, 6}));
  EXPECT_EQ(enc->rnn(2)->weight_ih.sizes(), (std::vector<int64_t>{16, 6}));
  EXPECT_EQ(enc->rnn(2)->weight_hh_raw.sizes(), (std::vector<int64_t>{16, 4}));
  EXPECT_LE(enc->embedding_weight().abs().max().item<double>(), 0.1);
  const double bound = 1.0 / std::sqrt(6.0);
  EXPECT_LE(enc->rnn(1)->bias_hh.abs().max().item<double>(), bound);
}

}  // namespace
}  // namespace ulmfit
