// The SIMT emulator's core interface: what the force-included cuda_emu.h (device functions, wmma,
// mk::cuda::launch_kernel) needs from simt.cc (fibers, scheduler, warp collectives) and runtime_emu.cc (streams,
// graphs, errors). Nothing here is CUDA API; kernels never include this file directly.
//
// Execution model (see README.md beside this file):
//  * one fiber per CUDA thread, with its own stack; the blocks of a launch run one after another
//    on the OS thread that issued the launch, all fibers of a block cooperatively on that thread;
//  * a fiber runs until it reaches a barrier or a warp collective (or exits), then yields to the
//    scheduler, which resumes runnable fibers in rounds, in the order of the current Schedule;
//  * a warp collective completes when every lane named by its mask waits at the same operation with
//    the same mask; __syncthreads completes when every thread of the block waits at it.
#pragma once
#include <cuda_runtime.h>  // dim3, uint3, cudaStream_t, cudaError_t

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace mk::emu {

// The order in which the scheduler resumes runnable threads in each round, and the order of blocks.
// A missing barrier shows up as a wrong result in at least one of these orders.
enum class Schedule { Forward, Reverse, Random };

// The schedule for later launches. Initially from MAMBAKIT_EMU_SCHEDULE=forward|reverse|random[:seed].
void set_schedule(Schedule s, uint64_t seed = 1);
Schedule schedule();
uint64_t schedule_seed();
const char* schedule_name(Schedule s);

// Fiber stack size in KiB for later launches (initially MAMBAKIT_EMU_STACK_KB, default 256 KiB,
// 1 MiB under AddressSanitizer). Returns the previous value.
size_t set_stack_kb(size_t kb);

// Test hook: forget the sticky error of a failed kernel (the real runtime needs a new process or
// cudaDeviceReset for that). The emulator's self-tests run many planted bugs in one process.
void clear_sticky_error();

// Counters since process start (for the self-tests' timing report).
struct Stats {
  uint64_t launches = 0, blocks = 0, threads = 0, switches = 0, collectives = 0;
};
Stats stats();

namespace detail {

struct Lane;

// The executing thread's built-ins, updated at every switch into a fiber.
struct Current {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
  Lane* lane;
  void* dyn_smem;  // this launch's dynamic shared memory (MK_DYNAMIC_SHARED)
};
extern Current g_cur;

// Warp collectives. The Op is part of the identity lanes must agree on (with the mask and width).
enum Op : uint32_t {
  kSyncWarp = 1,
  kShflIdx, kShflUp, kShflDown, kShflXor,  // 32-bit values
  kShflIdx64, kShflUp64, kShflDown64, kShflXor64,
  kBallot, kAny, kAll, kMatchAny, kMatchAny64, kMatchAll, kMatchAll64,
  kReduceAddU, kReduceMinU, kReduceMaxU, kReduceMinI, kReduceMaxI, kReduceAnd, kReduceOr, kReduceXor,
  kCustom,  // tensor-core ops: `complete` computes the results of all lanes
};

struct Collective;
// Completes a custom collective for the lanes of the mask (lanes[i] is lane i's request, or null
// for lanes outside the mask). Returns cudaSuccess, or an error code with a message in `err`.
using CompleteFn = int (*)(Collective* const* lanes, char* err, size_t errlen);

struct Collective {
  uint32_t op = 0;
  uint32_t mask = 0;
  int32_t width = 32;
  int32_t arg = 0;      // srcLane / delta / laneMask
  uint64_t value = 0;   // the lane's operand, as bits
  uint64_t result = 0;  // filled in by the completion
  int32_t pred = 0;     // __match_all_sync's *pred
  // kCustom: identity (one per operation and template instantiation), name and completion; the
  // operands p and u are set (and read) only by custom collectives.
  const void* tag = nullptr;
  const char* name = nullptr;
  CompleteFn complete = nullptr;
  void* p[4];
  uint64_t u[2];
};

// Called by a fiber: wait for the warp collective `c` (filled in by the caller), return when it
// completed (c.result / the custom outputs are then valid).
void warp_collective(Collective& c);
// __syncthreads and its _count/_and/_or forms: kind 0 plain, 1 count, 2 and, 3 or.
int block_barrier(int kind, int pred);
// Lets the other runnable threads run first (__nanosleep).
void yield_now();
// Ends the launch with a kernel error (sticky), e.g. __trap(). Never returns.
[[noreturn]] void lane_fail(cudaError_t code, const char* what);

// A kernel launch, type-erased: run_thread executes the kernel body for the current CUDA thread.
struct KernelTask {
  std::string text;                  // the kernel as named at its launch
  const char* (*arg_types)() = nullptr;  // its argument types, for messages
  void (*run_thread)(const KernelTask*) = nullptr;
  dim3 grid, block;
  size_t smem = 0;
  virtual ~KernelTask() = default;
  std::string name() const;  // text + "(" + argument types + ")"
};

// Validates the configuration and runs the kernel in stream order, or records it into the graph
// being captured on `stream` (runtime_emu.cc). Errors go to cudaGetLastError, as with <<<>>>.
void submit_kernel(std::shared_ptr<KernelTask> task, cudaStream_t stream);

// Runs all blocks of `t` now (simt.cc). Returns cudaSuccess or the kernel error with its message.
cudaError_t run_kernel(const KernelTask& t, std::string* message);
// True while the calling OS thread runs a kernel (a launch from device code).
bool in_kernel();

// "const float*, int, long int" for the template arguments A...
template <class... A>
const char* type_list() {
  static const std::string s = [](const std::string& f) {  // "... [with A = {const float*, int}]"
    const size_t b = f.find('{'), e = f.rfind('}');
    return (b == std::string::npos || e == std::string::npos || e < b) ? std::string()
                                                                        : f.substr(b + 1, e - b - 1);
  }(__PRETTY_FUNCTION__);
  return s.c_str();
}

template <class F, class Args>
struct KernelTaskOf final : KernelTask {
  F f;
  Args args;
  KernelTaskOf(F fn, Args a) : f(std::move(fn)), args(std::move(a)) {}
  // Each CUDA thread calls the kernel with its own copies of the arguments (by-value parameters),
  // so a kernel that modifies a parameter changes only its own copy, as on the GPU.
  static void run(const KernelTask* t) {
    const auto* k = static_cast<const KernelTaskOf*>(t);
    std::apply(k->f, k->args);
  }
};

}  // namespace detail

// The emulator side of mk::cuda::launch_kernel (csrc/cuda/launch.cuh): `call` invokes the kernel with the stored arguments (a generic lambda,
// so kernel templates deduce their arguments exactly as with <<<>>>). The arguments are evaluated
// once, here, and stored by value: a captured graph replays them as a CUDA graph replays its
// kernel parameters.
template <class Call, class... A>
void launch(const char* text, Call call, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
            A&&... args) {
  using Args = std::tuple<std::decay_t<A>...>;
  auto t = std::make_shared<detail::KernelTaskOf<Call, Args>>(std::move(call),
                                                              Args(std::forward<A>(args)...));
  t->text = text;
  t->arg_types = &detail::type_list<std::decay_t<A>...>;
  t->run_thread = &detail::KernelTaskOf<Call, Args>::run;
  t->grid = grid;
  t->block = block;
  t->smem = smem;
  detail::submit_kernel(std::move(t), stream);
}

}  // namespace mk::emu
