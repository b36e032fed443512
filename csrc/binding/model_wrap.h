// Native model plans exposed to JS (one handle per loaded model).
#pragma once
#include <napi.h>

#include "binding/instance.h"

namespace mk {

// Adds mambaCreate(dims, weights, device) to exports.
void register_models(Napi::Env env, Napi::Object exports);

}  // namespace mk
