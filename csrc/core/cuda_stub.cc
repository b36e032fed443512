// The CUDA backend of a CPU-only build: every call says CUDA was not compiled in.
#include "core/device.h"

namespace mk::gpu {
namespace {
Status not_compiled() {
  return make_error(Code::DEVICE, "mambakit was built without CUDA; only device 'cpu' is available");
}
}  // namespace

bool compiled() { return false; }
int device_count() { return 0; }
const Availability& availability() {
  static const Availability a{"not-compiled", "the addon was built without CUDA (no nvcc, or MAMBAKIT_CUDA=0)", "", 0, 0};
  return a;
}
Status props(int, Props*) { return not_compiled(); }
Status check_device(int) { return not_compiled(); }
Status raw_malloc(int, size_t, void**) { return not_compiled(); }
void raw_free(int, void*) {}
Status copy_h2d(int, void*, const void*, size_t) { return not_compiled(); }
Status copy_d2h(int, void*, const void*, size_t) { return not_compiled(); }
Status copy_d2d(int, void*, const void*, size_t) { return not_compiled(); }
Status memset_zero(int, void*, size_t) { return not_compiled(); }
Status synchronize(int) { return not_compiled(); }
void* stream(int) { return nullptr; }
Status last_launch_error(const char*) { return not_compiled(); }
Status capture_begin(int) { return not_compiled(); }
Status capture_end(int, void**) { return not_compiled(); }
Status graph_launch(int, void*) { return not_compiled(); }
void graph_destroy(void*) {}

}  // namespace mk::gpu
