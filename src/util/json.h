// A one-line JSON object builder for metrics.jsonl and machine-readable outputs.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ulmfit {

// Escapes a string for a JSON string literal (quotes included).
std::string JsonQuote(std::string_view text);

// The number stored under `key` in a flat one-line object that JsonLine wrote (metrics.jsonl,
// best.json); nullopt when the key is absent or does not hold a number.
std::optional<double> JsonNumberField(std::string_view json, std::string_view key);

class JsonLine {
 public:
  JsonLine& Add(std::string_view key, std::string_view value);
  JsonLine& Add(std::string_view key, const char* value) { return Add(key, std::string_view(value)); }
  JsonLine& Add(std::string_view key, double value);
  JsonLine& Add(std::string_view key, int64_t value);
  JsonLine& Add(std::string_view key, int value) { return Add(key, static_cast<int64_t>(value)); }
  JsonLine& Add(std::string_view key, bool value);
  // Adds pre-formatted JSON (an array or object).
  JsonLine& AddRaw(std::string_view key, std::string_view json);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void Key(std::string_view key);
  std::string body_;
};

}  // namespace ulmfit
