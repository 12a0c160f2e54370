#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "model/weights.h"
#include "text/rules.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/stages.h"

#include "test_util.h"

namespace ulmfit {
namespace {
namespace fs = std::filesystem;

TEST(FinetuneTest, DiscriminativeLearningRatesPerLmGroup) {
  // Groups: rnn0, rnn1, rnn2, embedding+decoder (top).
  const auto factor = LmGroupLrMultipliers(Discriminative::kFactor, 2.6, 3);
  ASSERT_EQ(factor.size(), 4u);
  EXPECT_DOUBLE_EQ(factor[3], 1.0);
  EXPECT_DOUBLE_EQ(factor[2], 1 / 2.6);
  EXPECT_DOUBLE_EQ(factor[0], 1 / (2.6 * 2.6 * 2.6));
  const auto scripts = LmGroupLrMultipliers(Discriminative::kScripts, 2.6, 3);
  EXPECT_EQ(scripts, (std::vector<double>{1.0 / 6, 1.0 / 3, 1.0, 1.0 / 2}));
  EXPECT_EQ(LmGroupLrMultipliers(Discriminative::kNone, 2.6, 3), std::vector<double>(4, 1.0));
}

absl::StatusOr<Tokenizer> TrainOn(const std::vector<std::string>& words, const fs::path& path) {
  std::vector<std::string> docs;
  for (int i = 0; i < 200; ++i) {
    std::string doc = "xxbos";
    for (int w = 0; w < 8; ++w) doc += " " + words[(i * 7 + w * 3) % words.size()];
    docs.push_back(doc);
  }
  TextConfig config;
  config.vocab_size = 40;
  return Tokenizer::Train(docs, config, path.string(), 1);
}

TEST(FinetuneTest, NewPiecesGetTheMeanEmbeddingAndMeanDecoderBias) {
  const fs::path dir = ulmfit_test::TempDir("match");
  auto old_tok = TrainOn({"alpha", "beta", "gamma", "delta", "shared", "common"}, dir / "a.model");
  auto new_tok = TrainOn({"shared", "common", "omega", "sigma", "kappa", "zeta"}, dir / "b.model");
  ASSERT_TRUE(old_tok.ok() && new_tok.ok());
  ASSERT_NE(old_tok->vocab_size(), 0);

  ModelConfig model;
  model.emb_size = 6;
  model.hidden_size = 8;
  model.num_layers = 2;
  torch::manual_seed(0);
  LanguageModel old_lm(LanguageModelOptions::FromConfig(model, old_tok->vocab_size(), kPadId));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : old_lm->parameters()) p.uniform_(-1, 1);
  }
  ASSERT_TRUE(SaveModuleWeights(*old_lm, (dir / "old.pt").string()).ok());
  LanguageModel new_lm(LanguageModelOptions::FromConfig(model, new_tok->vocab_size(), kPadId));
  ASSERT_TRUE(CopyMatchedLanguageModel((dir / "old.pt").string(), *old_tok, *new_tok, model,
                                       new_lm)
                  .ok());

  auto old_params = old_lm->named_parameters();
  auto new_params = new_lm->named_parameters();
  const auto old_emb = old_params["encoder.emb.weight"];
  const auto new_emb = new_params["encoder.emb.weight"];
  const auto old_bias = old_params["decoder.bias"];
  const auto new_bias = new_params["decoder.bias"];
  int shared = 0, fresh = 0;
  for (int id = 0; id < new_tok->vocab_size(); ++id) {
    const int old_id = old_tok->PieceToId(new_tok->IdToPiece(id));
    if (old_id >= 0) {
      EXPECT_TRUE(torch::equal(new_emb[id], old_emb[old_id])) << new_tok->IdToPiece(id);
      EXPECT_EQ(new_bias[id].item<float>(), old_bias[old_id].item<float>());
      ++shared;
    } else {
      EXPECT_TRUE(torch::allclose(new_emb[id], old_emb.mean(0))) << new_tok->IdToPiece(id);
      EXPECT_FLOAT_EQ(new_bias[id].item<float>(), old_bias.mean().item<float>());
      ++fresh;
    }
  }
  EXPECT_GT(shared, 9);  // at least the special tokens
  EXPECT_GT(fresh, 0);
  // Non-vocabulary weights are copied as they are.
  EXPECT_TRUE(torch::equal(new_params["encoder.rnns.0.weight_ih"],
                           old_params["encoder.rnns.0.weight_ih"]));
}

}  // namespace
}  // namespace ulmfit
