#include "config/presets.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "config/schema.h"
#include "config/value_text.h"

namespace ulmfit {
namespace {

// Sources: "paper" is Howard & Ruder 2018 (section numbers below) and the paper's scripts
// (fastai/fastai courses/dl2/imdb_scripts: finetune_lm.py, train_clas.py); "fastai" is fastai v2
// (fastai/text/learner.py, fastai/optimizer.py, fastai/callback/schedule.py) and fastbook
// chapter 10 (fastai/fastbook 10_nlp.ipynb).
const char* const kOptimizerWhy =
    "eps: PyTorch's Adam vs fastai's; weight_decay and clip: the paper's scripts vs fastai's "
    "true_wd 0.01 and to_fp16(clip=0.1)";

std::vector<PresetValue> MakePaperValues() {
  return {
      {"model.hidden_size", "1150", "the AWD-LSTM paper vs fastai's n_hid 1152"},

      // Stage 1.
      {"pretrain.bptt", "70", "the paper's BPTT 70 (section 4.1) vs fastai v2's seq_len 72"},
      {"pretrain.variable_bptt", "true",
       "AWD-LSTM's random sequence lengths vs fastai v2's fixed seq_len"},
      {"pretrain.lr", "4e-3", "the paper's LM lr 0.004 (section 4.1)"},
      {"pretrain.schedule.kind", "stlr",
       "slanted triangular lr (paper section 3.2, eq. 3) vs fastai's fit_one_cycle"},
      {"pretrain.optimizer.eps", "1e-8", kOptimizerWhy},
      {"pretrain.optimizer.weight_decay", "1e-7", kOptimizerWhy},
      {"pretrain.optimizer.clip", "0.3", kOptimizerWhy},

      // Stage 2: LM fine-tuning.
      {"finetune.bptt", "70", "as pretrain.bptt"},
      {"finetune.variable_bptt", "true", "as pretrain.variable_bptt"},
      {"finetune.lr", "4e-3",
       "the paper's 0.004 (section 4.1) vs fastbook's unfrozen fit_one_cycle(10, 2e-3)"},
      {"finetune.frozen_epochs", "0",
       "fastbook first trains only the embedding and decoder for one epoch; the paper does not"},
      {"finetune.drop_mult", "1", "the scripts' dropmult=1 vs fastbook's 0.3"},
      {"finetune.schedule.kind", "stlr", "as pretrain.schedule.kind"},
      {"finetune.optimizer.eps", "1e-8", kOptimizerWhy},
      {"finetune.optimizer.weight_decay", "1e-7", kOptimizerWhy},
      {"finetune.optimizer.clip", "0.3", kOptimizerWhy},

      // Stage 3: the classifier.
      {"classifier.drop_mult", "1",
       "fastai v1 and the scripts vs fastai v2's text_classifier_learner 0.5"},
      {"classifier.bptt", "70", "fastai v1 vs v2"},
      {"classifier.max_len", "1400", "20 * bptt in both"},
      // One epoch each with the top one and two groups, then everything until 50 epochs in all
      // (paper section 3.3 and footnote 7; the scripts have no third partial phase), lr 0.01
      // (section 4.1). fastai: fastbook's 1, 2, 3 groups, then all for 2 epochs.
      {"classifier.phase_groups", "1,2,all", "the scripts vs fastbook's freeze_to(-3) phase"},
      {"classifier.phase_epochs", "1,1,48", "50 epochs in all (paper footnote 7) vs fastbook"},
      {"classifier.phase_lrs", "1e-2,1e-2,1e-2", "the paper's classifier lr 0.01 (section 4.1)"},
      {"classifier.schedule.kind", "stlr", "as pretrain.schedule.kind"},
      {"classifier.optimizer.eps", "1e-8", kOptimizerWhy},
      {"classifier.optimizer.weight_decay", "1e-6", "the scripts' train_clas.py vs fastai"},
      {"classifier.optimizer.clip", "25", "the scripts' train_clas.py vs fastai"},
  };
}

// A bad row in the table above is a programming error that the tests catch; stop rather than
// train with half a preset.
[[noreturn]] void BadRow(const PresetValue& row, const std::string& why) {
  std::fprintf(stderr, "internal error: preset table row '%s': %s\n", row.key, why.c_str());
  std::abort();
}

}  // namespace

const std::vector<PresetValue>& PaperPresetValues() {
  static const std::vector<PresetValue>* const values =
      new std::vector<PresetValue>(MakePaperValues());
  return *values;
}

void ApplyPreset(Preset preset, Config* config) {
  Config fastai;  // the struct defaults are the fastai preset
  for (const PresetValue& row : PaperPresetValues()) {
    std::vector<std::string> errors;
    const void* fastai_field = nullptr;
    VisitField(fastai, row.key, [&](auto& field) { fastai_field = &field; });
    const bool found = VisitField(*config, row.key, [&](auto& field) {
      using T = std::remove_reference_t<decltype(field)>;
      if (preset == Preset::kPaper) {
        ParseValueText(row.key, row.paper, &field, &errors);
      } else {
        field = *static_cast<const T*>(fastai_field);  // same key, so the same type
      }
    });
    if (!found) BadRow(row, "no such key");
    if (!errors.empty()) BadRow(row, JoinErrors(errors));
  }
  config->preset = preset;
}

void ApplyPreset(const std::string& name, Config* config) {
  Preset preset;
  if (ParseEnum(name, &preset)) ApplyPreset(preset, config);
}

}  // namespace ulmfit
