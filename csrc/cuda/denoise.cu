// Placeholder until the CUDA kernel lands.
#include "cuda/kernels.h"

namespace mk::cuda {

Status denoise_pick(const DenoiseArgs&, void*) { return make_error(Code::DEVICE, "denoise_pick: no CUDA kernel yet"); }

}  // namespace mk::cuda
