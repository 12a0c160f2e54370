// fastai AWD-LSTM files <-> ulmfit's LanguageModel (interop/fastai_model.h), against outputs
// that PyTorch computed from the same files (scripts/make_fastai_fixtures.py).
//
// The exported language models were checked by hand with Python's reader:
//   ULMFIT_KEEP_INTEROP_FILES=/tmp/keep build/ulmfit_tests --gtest_filter='Fastai*'
//   /usr/bin/python3 -c "import torch; sd=torch.load('/tmp/keep/lm_v1_h10_legacy.export.pth'); \
//     ref=torch.load('tests/fixtures/fastai/lm_v1_h10_legacy.pth'); \
//     ref={k: v for k, v in ref.items() if 'module.weight_hh_l0' not in k}; \
//     print(list(sd)==list(ref), all(torch.equal(sd[k], ref[k]) for k in ref))"
// printed "True True" (the same keys in fastai's order, the same values) for each of the four
// models (lm_v2_h12_zip.pth needs a stand-in fastcore.foundation.L module to load in Python).
// Each export also loaded with load_state_dict(strict=True) into the fastai v2-shaped modules
// of scripts/make_fastai_fixtures.py (make_model(..., v1=False)), whose forward then gave the
// expected logits exactly.
#include "interop/fastai_model.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "interop/torch_file.h"
#include "interop/vocab.h"

namespace ulmfit {
namespace {

std::string Fixture(const std::string& name) {
  return std::string(ULMFIT_SOURCE_DIR) + "/tests/fixtures/fastai/" + name;
}

// "<name> <count>" then <count> lines of one number each.
std::map<std::string, std::vector<double>> ReadExpected(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::map<std::string, std::vector<double>> out;
  std::string name;
  size_t count = 0;
  while (in >> name >> count) {
    auto& values = out[name];
    values.resize(count);
    for (auto& v : values) in >> v;
  }
  return out;
}

torch::Tensor AsTensor(const std::vector<double>& v) {
  return torch::tensor(v, torch::kDouble).to(torch::kFloat);
}

LanguageModel BuildModel(const ImportedLanguageModel& imported) {
  ModelConfig config = imported.config;
  config.drop_mult = 0;
  LanguageModel model(LanguageModelOptions::FromConfig(config, imported.vocab_size, /*pad_id=*/1));
  model->eval();
  const absl::Status loaded = LoadImportedLanguageModel(imported, *model);
  EXPECT_TRUE(loaded.ok()) << loaded;
  return model;
}

absl::StatusOr<ImportedLanguageModel> Import(const std::string& name, int64_t vocab = -1) {
  ASSIGN_OR_RETURN(NamedTensors sd, ReadStateDict(Fixture(name + ".pth")));
  return ImportFastaiLanguageModel(sd, name + ".pth", vocab, "itos.pkl");
}

struct Case {
  const char* name;
  int emb, hidden, layers;
  bool tied, bias;
};
const Case kCases[] = {{"lm_v1_h10_legacy", 8, 10, 3, true, true},
                       {"lm_v1_h12_legacy", 8, 12, 2, true, true},
                       {"lm_v2_h12_zip", 8, 12, 3, true, true},
                       {"lm_v2_untied_zip", 8, 6, 2, false, false}};

TEST(FastaiModelTest, ImportedModelsMatchPyTorchOutputs) {
  const auto vocab = ReadVocab(Fixture("itos_p4.pkl"));
  ASSERT_TRUE(vocab.ok());
  torch::NoGradGuard no_grad;
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    auto imported = Import(c.name, static_cast<int64_t>(vocab->size()));
    ASSERT_TRUE(imported.ok()) << imported.status();
    EXPECT_EQ(imported->vocab_size, 50);
    EXPECT_EQ(imported->config.emb_size, c.emb);
    EXPECT_EQ(imported->config.hidden_size, c.hidden);
    EXPECT_EQ(imported->config.num_layers, c.layers);
    EXPECT_EQ(imported->config.tie_weights, c.tied);
    EXPECT_EQ(imported->config.out_bias, c.bias);
    EXPECT_TRUE(imported->has_decoder);
    // v1's dropped copies of W_hh are the only keys left out.
    for (const auto& key : imported->unused_keys) {
      EXPECT_NE(key.find("module.weight_hh_l0"), std::string::npos) << key;
    }
    LanguageModel model = BuildModel(*imported);
    const auto expected = ReadExpected(Fixture(std::string(c.name) + ".expected.txt"));
    for (int i = 0; i < 3; ++i) {
      const std::string n = std::to_string(i);
      const torch::Tensor tokens = AsTensor(expected.at("tokens." + n)).to(torch::kLong).unsqueeze(1);
      model->encoder()->ResetState();
      // (T, 1) -> (T, 1, V)
      const torch::Tensor logits = model->forward(tokens).logits.squeeze(1);
      const torch::Tensor want = AsTensor(expected.at("logits." + n)).reshape(logits.sizes());
      EXPECT_LT((logits - want).abs().max().item<double>(), 1e-5) << "case " << i;
      const auto state = model->encoder()->GetState();  // [h0, c0, h1, c1, ...]
      ASSERT_EQ(state.size(), 2u * c.layers);
      for (int l = 0; l < c.layers; ++l) {
        const std::string k = n + "." + std::to_string(l);
        EXPECT_LT((state[2 * l].flatten() - AsTensor(expected.at("h." + k))).abs().max().item<double>(), 1e-5);
        EXPECT_LT((state[2 * l + 1].flatten() - AsTensor(expected.at("c." + k))).abs().max().item<double>(), 1e-5);
      }
    }
  }
}

TEST(FastaiModelTest, ExportReadsBackBitIdenticalInFastaiV2Order) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    auto imported = Import(c.name);
    ASSERT_TRUE(imported.ok()) << imported.status();
    LanguageModel model = BuildModel(*imported);
    const NamedTensors exported = ExportFastaiLanguageModel(*model, FastaiLayout::kLanguageModel);
    auto bytes = SerializeStateDict(exported);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    if (const char* keep = std::getenv("ULMFIT_KEEP_INTEROP_FILES")) {
      ASSERT_TRUE(WriteStateDict(std::string(keep) + "/" + c.name + ".export.pth", exported).ok());
    }
    auto file = ParseTorchFile(*bytes, "export.pth");
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ(file->storages.size(), exported.size() - (c.tied ? 2 : 1));  // tied: one embedding
    auto back = StateDictOf(*file);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(back->size(), exported.size());
    // The original file minus v1's dropped copies: same keys, same order, same bits.
    auto original = ReadStateDict(Fixture(std::string(c.name) + ".pth"));
    ASSERT_TRUE(original.ok());
    std::vector<std::pair<std::string, torch::Tensor>> kept;
    for (const auto& kv : *original) {
      if (kv.first.find("module.weight_hh_l0") == std::string::npos) kept.push_back(kv);
    }
    ASSERT_EQ(kept.size(), back->size());
    for (size_t i = 0; i < kept.size(); ++i) {
      EXPECT_EQ((*back)[i].first, kept[i].first);
      EXPECT_TRUE(torch::equal((*back)[i].second, kept[i].second)) << kept[i].first;
    }
    // ... and it imports again to the same ulmfit tensors.
    auto again = ImportFastaiLanguageModel(*back, "export.pth");
    ASSERT_TRUE(again.ok()) << again.status();
    ASSERT_EQ(again->tensors.size(), imported->tensors.size());
    for (size_t i = 0; i < again->tensors.size(); ++i) {
      EXPECT_EQ(again->tensors[i].first, imported->tensors[i].first);
      EXPECT_TRUE(torch::equal(again->tensors[i].second, imported->tensors[i].second));
    }
  }
}

TEST(FastaiModelTest, EncoderLayoutsImport) {
  auto imported = Import("lm_v2_h12_zip");
  ASSERT_TRUE(imported.ok());
  LanguageModel model = BuildModel(*imported);
  // save_encoder's layout: the "0." part without its prefix.
  const NamedTensors encoder = ExportFastaiLanguageModel(*model, FastaiLayout::kEncoder);
  std::vector<std::string> keys;
  for (const auto& kv : encoder) keys.push_back(kv.first);
  ASSERT_EQ(keys.size(), 2u + 4 * 3);
  EXPECT_EQ(std::vector<std::string>(keys.begin(), keys.begin() + 6),
            (std::vector<std::string>{"encoder.weight", "encoder_dp.emb.weight",
                                      "rnns.0.weight_hh_l0_raw", "rnns.0.module.weight_ih_l0",
                                      "rnns.0.module.bias_ih_l0", "rnns.0.module.bias_hh_l0"}));
  auto enc = ImportFastaiLanguageModel(encoder, "enc.pth");
  ASSERT_TRUE(enc.ok()) << enc.status();
  EXPECT_FALSE(enc->has_decoder);
  EXPECT_EQ(enc->config.num_layers, 3);
  ASSERT_EQ(enc->tensors.size(), imported->tensors.size() - 1);  // no decoder.bias
  for (size_t i = 0; i < enc->tensors.size(); ++i) {
    EXPECT_EQ(enc->tensors[i].first, imported->tensors[i].first);
    EXPECT_TRUE(torch::equal(enc->tensors[i].second, imported->tensors[i].second));
  }
  // A classifier: the encoder under "0.module.", a head under "1.layers.".
  NamedTensors clas;
  for (const auto& [k, t] : encoder) clas.emplace_back("0.module." + k, t);
  clas.emplace_back("1.layers.0.0.weight", torch::ones({24}));
  auto from_clas = ImportFastaiLanguageModel(clas, "clas.pth");
  ASSERT_TRUE(from_clas.ok()) << from_clas.status();
  EXPECT_FALSE(from_clas->has_decoder);
  EXPECT_EQ(from_clas->unused_keys, std::vector<std::string>{"1.layers.0.0.weight"});
}

TEST(FastaiModelTest, AcceptsV1FilesWithoutModuleAndHalfPrecision) {
  auto sd = ReadStateDict(Fixture("lm_v1_h10_legacy.pth"));
  ASSERT_TRUE(sd.ok());
  auto reference = ImportFastaiLanguageModel(*sd, "a.pth");
  ASSERT_TRUE(reference.ok());
  NamedTensors renamed;
  for (const auto& [k, t] : *sd) {
    std::string key = k;
    if (const size_t at = key.find("module."); at != std::string::npos) key.erase(at, 7);
    if (key.find("weight_hh_l0") != std::string::npos && key.find("_raw") == std::string::npos) {
      continue;  // without "module." the dropped copy would shadow nothing; drop it
    }
    renamed.emplace_back(key, t.to(torch::kHalf));
  }
  auto imported = ImportFastaiLanguageModel(renamed, "b.pth");
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->tensors.size(), reference->tensors.size());
  for (size_t i = 0; i < imported->tensors.size(); ++i) {
    EXPECT_EQ(imported->tensors[i].second.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::allclose(imported->tensors[i].second, reference->tensors[i].second, 1e-2, 1e-3));
  }
}

TEST(FastaiModelTest, MissingMisshapenAndMismatchedKeysAreNamed) {
  auto sd = ReadStateDict(Fixture("lm_v1_h10_legacy.pth"));
  ASSERT_TRUE(sd.ok());
  auto without = [&](const std::string& drop) {
    NamedTensors out;
    for (const auto& kv : *sd) {
      if (kv.first != drop) out.push_back(kv);
    }
    return out;
  };
  // The dropped copy module.weight_hh_l0 is still there, and must not stand in for the raw one.
  auto missing = ImportFastaiLanguageModel(without("0.rnns.2.weight_hh_l0_raw"), "lstm_fwd.pth");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "lstm_fwd.pth: no '0.rnns.2.weight_hh_l0_raw'; not a fastai AWD-LSTM language model "
            "(found keys: '0.encoder.weight', '0.encoder_dp.emb.weight', "
            "'0.rnns.0.weight_hh_l0_raw', '0.rnns.0.module.weight_ih_l0', "
            "'0.rnns.0.module.weight_hh_l0', ...)");
  auto no_bias = ImportFastaiLanguageModel(without("0.rnns.1.module.bias_ih_l0"), "f.pth");
  ASSERT_FALSE(no_bias.ok());
  EXPECT_EQ(std::string(no_bias.status().message()).substr(0, 42),
            "f.pth: no '0.rnns.1.module.bias_ih_l0'; no");

  NamedTensors misshapen = *sd;
  for (auto& [k, t] : misshapen) {
    if (k == "0.rnns.1.module.weight_ih_l0") t = torch::zeros({40, 9});
  }
  auto bad_shape = ImportFastaiLanguageModel(misshapen, "f.pth");
  ASSERT_FALSE(bad_shape.ok());
  EXPECT_EQ(bad_shape.status().message(),
            "f.pth: '0.rnns.1.module.weight_ih_l0' has shape [40, 9]; expected [40, 10]");

  auto vocab = ImportFastaiLanguageModel(*sd, "f.pth", 49, "itos.pkl");
  ASSERT_FALSE(vocab.ok());
  EXPECT_EQ(vocab.status().message(), "itos.pkl has 49 tokens but the embedding has 50 rows");

  auto not_lm = ImportFastaiLanguageModel({{"weight", torch::zeros({2})}}, "x.pth");
  ASSERT_FALSE(not_lm.ok());
  EXPECT_EQ(not_lm.status().message(),
            "x.pth: no '0.encoder.weight'; not a fastai AWD-LSTM language model (found keys: "
            "'weight')");

  // A model of the wrong size is refused when loading.
  auto imported = ImportFastaiLanguageModel(*sd, "f.pth");
  ASSERT_TRUE(imported.ok());
  ModelConfig other = imported->config;
  other.hidden_size = 11;
  LanguageModel wrong(LanguageModelOptions::FromConfig(other, 50, 1));
  const absl::Status load = LoadImportedLanguageModel(*imported, *wrong);
  EXPECT_EQ(load.message(),
            "'encoder.rnns.0.weight_ih' has shape [40, 8] but the model's is [44, 8]");
}

}  // namespace
}  // namespace ulmfit
