// Placeholder until the flash-style kernels land: reports that the CUDA attention is not built.
#include "cuda/attn.cuh"

namespace mk::cuda {

Status attention(const AttnArgs&, void*) { return make_error(Code::DEVICE, "attention: no CUDA kernel yet"); }
Status rope_kv(const RopeArgs&, void*) { return make_error(Code::DEVICE, "rope_kv: no CUDA kernel yet"); }

}  // namespace mk::cuda
