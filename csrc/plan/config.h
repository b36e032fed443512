// What a family builder receives from the binding: a config (the JS object's numbers, strings,
// booleans and lists) and weights by name. Getters return coded errors naming the family and key,
// so every model check lives in models/, none in the binding.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mk {

struct ConfigValue {
  enum class Kind { NUMBER, STRING, BOOL, NUMBERS, STRINGS } kind = Kind::NUMBER;
  double number = 0;
  bool flag = false;
  std::string str;
  std::vector<double> numbers;
  std::vector<std::string> strings;
};

class Config {
 public:
  Config(std::string family, std::map<std::string, ConfigValue> values)
      : family_(std::move(family)), values_(std::move(values)) {}
  const std::string& family() const { return family_; }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  // An integer in [lo, hi].
  Status integer(const std::string& key, int64_t lo, int64_t hi, int64_t* out) const;
  Status integer_or(const std::string& key, int64_t lo, int64_t hi, int64_t dflt, int64_t* out) const;
  // A finite number in (lo, hi).
  Status number(const std::string& key, double lo, double hi, double* out) const;
  Status boolean_or(const std::string& key, bool dflt, bool* out) const;
  // One of `allowed`.
  Status choice(const std::string& key, const std::vector<std::string>& allowed, std::string* out) const;
  Status integers(const std::string& key, int64_t lo, int64_t hi, std::vector<int64_t>* out) const;
  Status strings(const std::string& key, std::vector<std::string>* out) const;

 private:
  Status find(const std::string& key, ConfigValue::Kind kind, const char* what, const ConfigValue** out) const;
  std::string family_;
  std::map<std::string, ConfigValue> values_;
};

// Weights by name. take() hands a tensor to a block; after building, the family calls
// expect_all_used() so an unexpected name is an error, not silently ignored.
class WeightMap {
 public:
  WeightMap(std::string family, std::map<std::string, Tensor> w) : family_(std::move(family)), w_(std::move(w)) {}
  // E_ARG "missing weight" when absent.
  Status take(const std::string& name, Tensor* out);
  // Absent: leaves `out` empty.
  void take_optional(const std::string& name, Tensor* out);
  bool has(const std::string& name) const { return w_.count(name) != 0; }
  Status expect_all_used() const;

 private:
  std::string family_;
  std::map<std::string, Tensor> w_;
  std::set<std::string> used_;
};

// A weight's checks, named as the family calls it (E_DEVICE / E_DTYPE / E_SHAPE): a GEMM weight
// may be f32/f16/bf16, anything else is f32. The shape must match exactly, or (exact = false) in
// element count (HF stores a depthwise conv [E, 1, K]: the bytes of [E, K]).
Status expect_tensor(const std::string& family, const std::string& name, const Tensor& t, const Shape& shape,
                     bool gemm_weight, Device dev, bool exact = false);

}  // namespace mk
