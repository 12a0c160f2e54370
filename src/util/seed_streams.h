// Every random stream of a run, named, with the one rule that derives it from run.seed. Each
// stage draws from its own stream, so adding a draw to one stage cannot change another's; the
// rules are fixed, because changing one changes every published number that used it.
#pragma once

#include <cstdint>

namespace ulmfit {

enum class SeedStream {
  kPretrain,          // stage 1: torch (weights, dropout masks) and the LM batch order
  kFinetune,          // stage 2: torch and the LM batch order
  kClassify,          // stage 3: torch and the classifier's batch order
  kPreciseBnSample,   // stage 3: the training documents that set the head's BatchNorm statistics
  kPretrainHoldout,   // stage 1: documents held out for validation when pretrain.data.valid is unset
  kFinetuneHoldout,   // stage 2: the task's text split into LM training and validation
  kActiveSeedSet,     // active-learn: the labels of round 0 (from the simulation's own seed)
};

// The seed of `stream` for a run (or, for kActiveSeedSet, a simulation) seeded with `seed`.
constexpr uint64_t StreamSeed(uint64_t seed, SeedStream stream) {
  switch (stream) {
    case SeedStream::kPretrain: return seed;
    case SeedStream::kFinetune: return seed + 1;
    case SeedStream::kClassify: return seed + 2;
    case SeedStream::kPreciseBnSample: return seed + 5;
    case SeedStream::kPretrainHoldout: return seed ^ 0x76616c6964ULL;  // "valid"
    case SeedStream::kFinetuneHoldout: return seed ^ 0x66696e65ULL;    // "fine"
    case SeedStream::kActiveSeedSet: return seed ^ 0x5eed5e7ULL;
  }
  return seed;
}

// The seed of round `round` of a suggestion loop (active-learn's queries, label's reshuffles)
// whose own seed is `seed`: one stream per round, none shared with the rounds before it.
constexpr uint64_t RoundSeed(uint64_t seed, uint64_t round) { return seed * 1000003ULL + round; }

// The seed of `ulmfit label`'s suggestions once `labels` answers are in: each new answer gives a
// new order of the texts shown before the first retraining, and new tie-breaks after it.
constexpr uint64_t LabelQueueSeed(uint64_t run_seed, uint64_t labels) { return run_seed + labels; }

}  // namespace ulmfit
