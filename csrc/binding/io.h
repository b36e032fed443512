// Checkpoint I/O: reading tensor bytes from a file straight into tensor storage.
#pragma once
#include <napi.h>

namespace mk {

// Adds readTensor(path, offset, srcDtype, dstDtype, shape, device) -> Promise<NativeTensor> to exports.
void register_io(Napi::Env env, Napi::Object exports);

}  // namespace mk
