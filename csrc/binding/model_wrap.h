// The one binding for models: createModel(family, config, weights, device) -> NativeModel.
#pragma once
#include <napi.h>

#include "binding/instance.h"

namespace mk {

// Adds createModel and modelFamilies to exports.
void register_models(Napi::Env env, Napi::Object exports);

}  // namespace mk
