#include "models/registry.h"

#include <map>

namespace mk {
namespace {
std::map<std::string, FamilyBuilder>& table() {
  static auto* t = new std::map<std::string, FamilyBuilder>();
  return *t;
}
}  // namespace

FamilyRegistrar::FamilyRegistrar(const char* name, FamilyBuilder build) { table()[name] = build; }

std::vector<std::string> family_names() {
  std::vector<std::string> r;
  for (auto& kv : table()) r.push_back(kv.first);
  return r;
}

Status build_model(const std::string& family, const Config& cfg, WeightMap& weights, Device dev,
                   std::unique_ptr<Plan>* out) {
  auto it = table().find(family);
  if (it == table().end()) {
    std::string names;
    for (const std::string& n : family_names()) names += (names.empty() ? "" : ", ") + n;
    return make_error(Code::ARG, "createModel: unknown family '" + family + "' (known: " + names + ")");
  }
  MK_RETURN_IF_ERROR(it->second(cfg, weights, dev, out));
  MK_RETURN_IF_ERROR(weights.expect_all_used());
  return (*out)->finalize();
}

}  // namespace mk
