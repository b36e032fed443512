#include "plan/config.h"

#include <cmath>

namespace mk {

Status Config::find(const std::string& key, ConfigValue::Kind kind, const char* what, const ConfigValue** out) const {
  auto it = values_.find(key);
  if (it == values_.end()) return make_error(Code::ARG, family_ + ": config." + key + " is missing");
  if (it->second.kind != kind) return make_error(Code::ARG, family_ + ": config." + key + " must be " + what);
  *out = &it->second;
  return Status::Ok();
}

Status Config::integer(const std::string& key, int64_t lo, int64_t hi, int64_t* out) const {
  const ConfigValue* v = nullptr;
  MK_RETURN_IF_ERROR(find(key, ConfigValue::Kind::NUMBER, "a number", &v));
  const double d = v->number;
  if (!(std::floor(d) == d && d >= static_cast<double>(lo) && d <= static_cast<double>(hi)))
    return make_error(Code::ARG, family_ + ": config." + key + " = " + std::to_string(d) + " must be an integer in [" +
                                     std::to_string(lo) + ", " + std::to_string(hi) + "]");
  *out = static_cast<int64_t>(d);
  return Status::Ok();
}

Status Config::integer_or(const std::string& key, int64_t lo, int64_t hi, int64_t dflt, int64_t* out) const {
  if (!has(key)) {
    *out = dflt;
    return Status::Ok();
  }
  return integer(key, lo, hi, out);
}

Status Config::number(const std::string& key, double lo, double hi, double* out) const {
  const ConfigValue* v = nullptr;
  MK_RETURN_IF_ERROR(find(key, ConfigValue::Kind::NUMBER, "a number", &v));
  if (!(std::isfinite(v->number) && v->number > lo && v->number < hi))
    return make_error(Code::ARG, family_ + ": config." + key + " = " + std::to_string(v->number) + " must be in (" +
                                     std::to_string(lo) + ", " + std::to_string(hi) + ")");
  *out = v->number;
  return Status::Ok();
}

Status Config::boolean_or(const std::string& key, bool dflt, bool* out) const {
  if (!has(key)) {
    *out = dflt;
    return Status::Ok();
  }
  const ConfigValue* v = nullptr;
  MK_RETURN_IF_ERROR(find(key, ConfigValue::Kind::BOOL, "a boolean", &v));
  *out = v->flag;
  return Status::Ok();
}

Status Config::choice(const std::string& key, const std::vector<std::string>& allowed, std::string* out) const {
  const ConfigValue* v = nullptr;
  MK_RETURN_IF_ERROR(find(key, ConfigValue::Kind::STRING, "a string", &v));
  std::string names;
  for (const std::string& a : allowed) {
    if (v->str == a) {
      *out = a;
      return Status::Ok();
    }
    names += (names.empty() ? "" : ", ") + a;
  }
  return make_error(Code::ARG, family_ + ": config." + key + " = '" + v->str + "' must be one of " + names);
}

Status Config::integers(const std::string& key, int64_t lo, int64_t hi, std::vector<int64_t>* out) const {
  const ConfigValue* v = nullptr;
  MK_RETURN_IF_ERROR(find(key, ConfigValue::Kind::NUMBERS, "a list of numbers", &v));
  out->clear();
  for (double d : v->numbers) {
    if (!(std::floor(d) == d && d >= static_cast<double>(lo) && d <= static_cast<double>(hi)))
      return make_error(Code::ARG, family_ + ": config." + key + " must hold integers in [" + std::to_string(lo) + ", " +
                                       std::to_string(hi) + "]");
    out->push_back(static_cast<int64_t>(d));
  }
  return Status::Ok();
}

Status Config::strings(const std::string& key, std::vector<std::string>* out) const {
  const ConfigValue* v = nullptr;
  MK_RETURN_IF_ERROR(find(key, ConfigValue::Kind::STRINGS, "a list of strings", &v));
  *out = v->strings;
  return Status::Ok();
}

Status WeightMap::take(const std::string& name, Tensor* out) {
  auto it = w_.find(name);
  if (it == w_.end()) return make_error(Code::ARG, family_ + ": missing weight '" + name + "'");
  used_.insert(name);
  *out = it->second;
  return Status::Ok();
}

void WeightMap::take_optional(const std::string& name, Tensor* out) {
  if (has(name)) (void)take(name, out);
}

Status WeightMap::expect_all_used() const {
  for (const auto& kv : w_)
    if (!used_.count(kv.first)) return make_error(Code::ARG, family_ + ": unexpected weight '" + kv.first + "'");
  return Status::Ok();
}

Status expect_tensor(const std::string& family, const std::string& name, const Tensor& t, const Shape& shape,
                     bool gemm_weight, Device dev, bool exact) {
  if (!t.storage) return make_error(Code::ARG, family + ": missing tensor " + name);
  if (t.device() != dev)
    return make_error(Code::DEVICE, family + ": " + name + " is on " + t.device().str() + ", model on " + dev.str());
  if (gemm_weight ? !is_float(t.dtype) : t.dtype != DType::F32)
    return make_error(Code::DTYPE, family + ": " + name + " has dtype " + dtype_name(t.dtype));
  if (exact ? t.shape != shape : t.numel() != shape_numel(shape))
    return make_error(Code::SHAPE, family + ": " + name + " is " + t.desc() + ", expected " + shape_str(shape));
  return Status::Ok();
}

}  // namespace mk
