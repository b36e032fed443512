// Per-load state of the addon (safe when the addon is loaded more than once per process, as under
// jest): the Tensor constructor lives here, never in a static.
#pragma once
#include <napi.h>

namespace mk {

struct Instance {
  Napi::FunctionReference tensor_ctor;
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference state_ctor;
};

inline Instance& instance(Napi::Env env) { return *env.GetInstanceData<Instance>(); }

}  // namespace mk
