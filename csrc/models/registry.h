// The family registry: a family turns a config and weights (by checkpoint name) into a plan. The
// binding's createModel(family, config, weights, device) looks the family up here; adding a family
// is one builder file that registers itself (see docs/architecture.md).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "plan/config.h"
#include "plan/plan.h"

namespace mk {

using FamilyBuilder = Status (*)(const Config& cfg, WeightMap& weights, Device dev, std::unique_ptr<Plan>* out);

struct FamilyRegistrar {
  FamilyRegistrar(const char* name, FamilyBuilder build);
};

// Builds the plan of `family` (E_ARG naming the known families when it is not one of them).
Status build_model(const std::string& family, const Config& cfg, WeightMap& weights, Device dev,
                   std::unique_ptr<Plan>* out);
std::vector<std::string> family_names();

}  // namespace mk
