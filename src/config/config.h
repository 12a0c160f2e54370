// The typed configuration of one ulmfit run. YAML is read once, by config/config_loader.cc, into
// these structs; the rest of the program never sees YAML. Every field has a default here, and
// docs/config.md documents each key (same names: section.key).
//
// Presets: the defaults here are the `fastai` preset's (fastai v2 and fastbook chapter 10).
// `preset: paper` (Howard & Ruder 2018 and its scripts) changes the keys listed in
// config/presets.cc before the file's own values are applied; docs/config.md, "Presets".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/enums.h"

namespace ulmfit {

// One classifier.phase_groups item: how many layer groups, counted from the top, a phase of
// gradual unfreezing trains. kAll (written `all`) is every group, whatever the model's depth.
struct GroupCount {
  static constexpr int kAll = 0;
  int count = kAll;
  // Implicit, so that a list reads {1, 2, 3, GroupCount::kAll}.
  constexpr GroupCount(int n = kAll) : count(n) {}  // NOLINT(google-explicit-constructor)
  friend bool operator==(GroupCount a, GroupCount b) { return a.count == b.count; }
  friend bool operator!=(GroupCount a, GroupCount b) { return a.count != b.count; }
};

// Where the run lives and how it executes.
struct RunConfig {
  std::string output_dir = "runs/default";  // run directory: checkpoints, metrics.jsonl, logs
  uint64_t seed = 42;                       // seeds every RNG stream (torch, shuffles, BPTT)
  std::string device = "auto";              // "auto" (CUDA if available), "cpu", "cuda", "cuda:N"
  int threads = 0;                          // intra-op CPU threads; 0 = number of physical cores
  double checkpoint_minutes = 10;           // also checkpoint mid-epoch this often; 0 = epoch only
  int log_every = 50;                       // progress line every N steps (TTY: rewritten in place)
  // Multi-process runs (torchrun, srun or --nproc; docs/distributed.md).
  DistributedBackend distributed_backend = DistributedBackend::kAuto;
  double distributed_timeout_s = 1800;      // a collective or rendezvous waiting longer fails
  bool batch_per_rank = false;              // batch_size per process, not for the whole job
  bool cpu_bf16 = false;  // CPU training: the model's products in bfloat16 (AVX512_BF16/AMX)
};

// A corpus for language modelling: one document per line of a file, or one per file in a folder.
// Files may be gzipped (.gz).
struct LmDataConfig {
  std::string train;                  // required: path to a text file or a folder of text files
  std::string valid;                  // validation text; empty = hold out valid_fraction of train
  double valid_fraction = 0.05;       // used only when `valid` is empty (documents, seeded)
  CorpusFormat format = CorpusFormat::kAuto;  // lines (one doc per line), files (one doc per
                                              // file), auto: files for a folder, lines for a file
  int64_t max_documents = 0;          // read at most this many training documents; 0 = all
};

// Text pipeline: fastai's pre-rules, then SentencePiece.
struct TextConfig {
  // What stage 1 (or stage 2 without pretraining) builds: SentencePiece pieces, or a word
  // vocabulary as fastai's (v1 rules and spaCy-style words; at most vocab_size words seen
  // twice). A stage that starts from another run uses that run's tokenizer, whatever its kind.
  TokenizerKind tokenizer = TokenizerKind::kSentencePiece;
  bool rules = true;                  // apply fastai pre-rules (fix_html, xxrep, xxwrep, xxup, xxmaj)
  bool lowercase = true;              // lowercase after marking case with xxup/xxmaj
  std::string spm_model;              // use this SentencePiece .model instead of training one
  int vocab_size = 15000;             // SentencePiece vocabulary size (MultiFiT uses 15k)
  SpmModelType model_type = SpmModelType::kUnigram;  // SentencePiece model type: unigram or bpe
  double character_coverage = 0.99995;  // SentencePiece character coverage
  int64_t max_training_sentences = 2000000;  // SentencePiece input_sentence_size (sampled)
  std::string cache_dir;              // token-id cache; empty = ~/.cache/ulmfit (shared by runs)
  int threads = 0;                    // tokenizer threads; 0 = all hardware threads
};

// AWD-LSTM (Merity et al. 2017), as used by ULMFiT (Howard & Ruder 2018, section 4.1).
struct DropoutConfig {
  double embed = 0.02;   // whole embedding rows (fastai embed_p)
  double input = 0.25;   // variational dropout on the embedding output (input_p)
  double weight = 0.2;   // DropConnect on each LSTM's hidden-to-hidden matrix (weight_p)
  double hidden = 0.15;  // variational dropout between LSTM layers (hidden_p)
  double output = 0.1;   // variational dropout on the last LSTM output (output_p)
};

struct ModelConfig {
  int emb_size = 400;       // embedding size; also the last LSTM layer's size (tied decoder)
  int hidden_size = 1152;   // hidden units in the inner LSTM layers (paper: 1150)
  int num_layers = 3;       // LSTM layers
  DropoutConfig dropout;    // LM dropouts (fastai awd_lstm_lm_config)
  double drop_mult = 1.0;   // multiplies every dropout above (fastai drop_mult)
  bool tie_weights = true;  // decoder weight = embedding weight
  bool out_bias = true;     // decoder has a bias
  bool backwards = false;   // read text right to left in every stage (the backward model of
                            // the paper's bidirectional pair; predict reverses too)
};

// Optimizer and learning-rate schedule of one training stage.
struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::kOneCycle;  // stlr, one_cycle or constant
  double cut_frac = 0.1;           // STLR: fraction of steps spent increasing (paper eq. 3)
  double ratio = 32;               // STLR: lr_max / lr_min (paper eq. 3)
  double pct_start = 0.25;         // one-cycle: fraction of steps warming up (fastai v2)
  double div = 25;                 // one-cycle: start lr = lr_max / div
  double div_final = 1e5;          // one-cycle: final lr = lr_max / div_final
  double mom_max = 0.8;            // one-cycle: Adam beta1 at the ends (fastai moms 0.8,0.7,0.8)
  double mom_min = 0.7;            // one-cycle: Adam beta1 at the peak lr
};

struct OptimizerConfig {
  double beta1 = 0.7;          // Adam beta1 when the schedule does not cycle momentum (paper)
  double beta2 = 0.99;         // Adam beta2 (paper)
  double eps = 1e-5;           // Adam epsilon (fastai)
  double weight_decay = 0.01;  // decoupled weight decay (AdamW, fastai true_wd)
  double clip = 0.1;           // gradient-norm clipping; 0 = off
};

// Stage 1: language-model pretraining on general text.
struct PretrainConfig {
  LmDataConfig data;            // the general-domain corpus
  int epochs = 10;
  int batch_size = 64;          // number of parallel token streams
  int bptt = 72;                // mean BPTT length (fastai v2 seq_len; paper: 70)
  bool variable_bptt = false;   // AWD-LSTM random sequence lengths, lr scaled by seq_len / bptt
  double lr = 1e-2;             // peak learning rate
  ScheduleConfig schedule;
  OptimizerConfig optimizer;
  double ar_alpha = 2.0;        // activation regularization (on dropped last-layer output)
  double tar_beta = 1.0;        // temporal activation regularization (on raw last-layer output)
  bool mixed_precision = false; // CUDA only: autocast to float16
  int64_t max_steps = 0;        // stop each epoch after this many steps; 0 = full epochs (tests)
};

// The target task's labelled data (stages 2 and 3). Files may be gzipped.
struct TaskDataConfig {
  std::string train;                 // TSV/CSV file, or a folder with one subfolder per class
  std::string valid;                 // empty = hold out valid_fraction of train (seeded)
  std::string test;                  // optional: evaluated after training, confusion matrix saved
  std::string unlabeled;             // extra unlabelled text for stage 2 (lines or folder)
  double valid_fraction = 0.1;       // used only when `valid` is empty; 0 = no validation
                                     // (every label trains; the last epoch is kept)
  TaskFormat format = TaskFormat::kAuto;  // auto, tsv, csv or folders (aclImdb layout)
  std::string label_column = "0";    // column name (files with a header) or 0-based index
  std::vector<std::string> text_columns = {"1"};  // names or indices; joined with xxfld
  HeaderMode header = HeaderMode::kAuto;  // auto (first row names label_column), yes, no
  int64_t max_train_examples = 0;    // keep a seeded sample of N training examples; 0 = all
  int64_t max_valid_examples = 0;    // the same for validation (cheaper epochs on a CPU)
  int64_t max_test_examples = 0;     // the same for the test set (a documented subset)
  int64_t max_unlabeled = 0;         // read at most the first N unlabelled texts; 0 = all
};

// finetune.pretrained value for "no pretraining": stage 2 starts from random weights with a
// tokenizer trained on the task's text (the paper's "without pretraining" baseline).
inline constexpr const char* kNoPretraining = "none";

// Stage 2: fine-tuning the pretrained LM on the task's text (Howard & Ruder 2018, section 3.2).
struct FinetuneConfig {
  std::string pretrained;       // a run directory whose pretrain/lm.pt and tokenizer to start
                                // from; empty = this run's own stage 1; "none" = no pretraining;
                                // or a fastai weights file (.pth), imported first
  std::string pretrained_vocab; // with a fastai weights file: its vocabulary (itos .pkl or text)
  bool use_test_text = true;    // also fine-tune on the test set's text (labels unused; paper)
  int epochs = 10;              // unfrozen epochs (paper footnote 7: 15 on TREC-6)
  int batch_size = 64;
  int bptt = 72;
  bool variable_bptt = false;
  double lr = 2e-3;             // peak lr of the top layer group (fastbook ch. 10; paper: 4e-3)
  // Lower groups' lr: factor (lr / lr_factor^k), scripts (lr/6, lr/3, lr, lr/2 of the paper's
  // scripts, fastai/fastai courses/dl2/imdb_scripts/finetune_lm.py) or none.
  Discriminative discriminative = Discriminative::kFactor;
  double lr_factor = 2.6;       // paper section 3.2
  int frozen_epochs = 1;        // first train only embedding + decoder (fastai); 0 = off
  double frozen_lr = 2e-2;      // peak lr of the frozen epochs
  double drop_mult = 0.3;       // multiplies model.dropout (fastbook uses 0.3 for LM fine-tuning)
  ScheduleConfig schedule;
  OptimizerConfig optimizer;
  double ar_alpha = 2.0;
  double tar_beta = 1.0;
  bool mixed_precision = false;
  int64_t max_steps = 0;        // stop each epoch after this many steps; 0 = full (tests)
};

// Stage 3: the classifier (concat pooling head, BPT3C, gradual unfreezing; paper section 3.3).
struct ClassifierConfig {
  // Classifier dropouts: the paper's values (fastai awd_lstm_clas_config), times drop_mult.
  DropoutConfig dropout{0.05, 0.4, 0.5, 0.3, 0.4};
  double drop_mult = 0.5;       // fastai text_classifier_learner default (paper preset: 1.0)
  int hidden = 50;              // units in the head's hidden layer (paper)
  double head_dropout = 0.1;    // dropout before the head's last linear layer (fastai ps)
  int batch_size = 64;
  int bptt = 72;                // BPT3C chunk length
  // BPT3C: gradients and pooling cover the last max_len tokens. At least 2 * bptt - 1, so that
  // every document's last token lies in that window (TextClassifier, model/classifier.cc).
  int max_len = 1440;
  // Gradual unfreezing, one item per phase (the three lists have the same length): how many
  // layer groups from the top are trainable, epochs, and the top group's peak lr. Lower groups
  // get lr / lr_factor^k. Defaults: fastbook chapter 10. ParsePhases() pairs them up.
  std::vector<GroupCount> phase_groups = {1, 2, 3, GroupCount::kAll};
  std::vector<int> phase_epochs = {1, 1, 1, 2};
  std::vector<double> phase_lrs = {2e-2, 1e-2, 5e-3, 1e-3};
  double lr_factor = 2.6;
  ScheduleConfig schedule;      // applied within each phase
  OptimizerConfig optimizer;
  double ar_alpha = 2.0;
  double tar_beta = 1.0;
  SelectMetric select_metric = SelectMetric::kAccuracy;  // best checkpoint by: accuracy,
                                                         // macro_f1 or loss
  // Small labelled sets: an epoch repeats the (reshuffled) data until it has at least this
  // many steps, so 100 labels still get enough updates for the schedule to mean something.
  int64_t min_steps_per_epoch = 0;
  // After every epoch, set the head's BatchNorm statistics from this many training documents
  // with dropout off (train/precise_bn.h); 0 = keep the running averages of training.
  int64_t precise_bn_docs = 2000;
  // A run directory whose fine-tuned LM (finetune/lm.pt) and tokenizer the classifier starts
  // from; stages 1 and 2 are then skipped. Empty = this run's own stage 2.
  std::string language_model;
  bool mixed_precision = false;
  int64_t max_steps = 0;        // stop each epoch after this many steps; 0 = full (tests)
};

// Active learning: which unlabelled texts a person should label next (ulmfit suggest, label
// and active-learn; docs/active_learning.md).
struct ActiveConfig {
  std::string pool;                  // ulmfit label: unlabelled texts, one per line (or a
                                     // labelled file read like task.train, labels ignored)
  // The strategy that measured best on TREC-6 (docs/active_learning.md): margin, after a random
  // cold start.
  Strategy strategy = Strategy::kMargin;
  int query_size = 20;               // texts chosen per round
  int retrain_every = 20;            // ulmfit label: retrain the classifier after N new labels
  std::vector<std::string> labels;   // ulmfit label: the label names (keys 1-9 pick them);
                                     // empty = the labels already in task.train
  int candidates_per_query = 10;     // diverse: cluster the query_size * N most uncertain texts
  // Simulation (ulmfit active-learn): task.train is the pool, its labels hidden until queried.
  int seed_examples = 50;            // labelled at random before the first round; 0 = a
                                     // cold start (round 0 chosen by the strategy)
  // While fewer than cold_start_labels texts are labelled, the uncertainty strategies (which
  // need a classifier worth asking) choose by cold_start instead: kmeans (the most typical text
  // of each k-means cluster of the fine-tuned LM's features) or random (measured better on
  // TREC-6 at 25 labels: docs/active_learning.md).
  Strategy cold_start = Strategy::kRandom;
  int cold_start_labels = 1;
  int balanced_below = 0;            // below this many labels, score-ranked picks are
                                     // class-balanced by predicted label (SelectBalanced)
  int mc_passes = 10;                // bald: stochastic dropout passes per text
  int rounds = 10;                   // query rounds after the seed set
  std::vector<Strategy> strategies = {Strategy::kRandom, Strategy::kLeastConfidence,
                                      Strategy::kMargin, Strategy::kEntropy, Strategy::kDiverse};
  std::vector<uint64_t> seeds = {1, 2, 3};  // one simulation per seed and strategy
  int64_t max_pool = 0;              // a seeded sample of the pool; 0 = all of task.train
  int64_t max_test_examples = 0;     // test each round on a seeded sample; 0 = as task.test
                                     // (task.max_test_examples)
};

struct Config {
  Preset preset = Preset::kFastai;  // which defaults apply (config/presets.h)
  std::string source_path;          // the YAML file this came from (not a key)
  // Where each key was set, "section.key" -> "file:line:col" or "--set section.key=value"
  // (not a key): filled by the loader so ValidateConfig() can point at the offending line.
  std::map<std::string, std::string> key_locations;
  RunConfig run;
  TextConfig text;
  ModelConfig model;
  PretrainConfig pretrain;
  TaskDataConfig task;
  FinetuneConfig finetune;
  ClassifierConfig classifier;
  ActiveConfig active;
};

}  // namespace ulmfit
