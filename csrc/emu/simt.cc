// Fibers and the block scheduler of the SIMT emulator (interface and model: simt.h, README.md).
//
// Every CUDA thread of a block is a fiber with a private stack. A fiber is entered the first time
// with makecontext/swapcontext; after that every switch (fiber -> scheduler -> fiber) is a
// _setjmp/_longjmp pair, which saves a few registers and makes no system call (swapcontext also
// saves the signal mask with sigprocmask, about 5x slower). A fiber that finishes its CUDA thread
// parks at the end of its loop and is reused, with its stack, for a thread of the next block.
//
// The scheduler runs on the stack of the OS thread that issued the launch. It resumes the runnable
// threads of the block in rounds (in the current Schedule's order); a thread runs until it waits at
// a barrier or warp collective, or exits. Every wait is checked when it happens (a mask naming a
// lane that exited or waits at __syncthreads, a barrier reached after another thread exited, masks
// that name each other but differ), and the launch stops at the first error; a block in which no
// thread can run but some have not exited is a deadlock and also an error.
//
// Only one launch runs at a time (runtime_emu.cc holds the device lock), so the state below is
// plain globals.

// _FORTIFY_SOURCE turns _longjmp into __longjmp_chk, which rejects a jump to another stack.
#undef _FORTIFY_SOURCE
#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "simt.h"

#if defined(__SANITIZE_ADDRESS__)
#define MK_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MK_EMU_ASAN 1
#endif
#endif
#if defined(MK_EMU_ASAN)
#include <dlfcn.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace mk::emu {
namespace detail {

Current g_cur{};

enum class St : uint8_t { Runnable, Barrier, Warp, Exited, Failed };

struct Lane {
  jmp_buf jb;
  char* stack = nullptr;  // lowest usable byte; a PROT_NONE guard page lies below it
  size_t stack_size = 0;
  bool started = false;    // entered through makecontext (later switches: _longjmp)
  bool in_kernel = false;  // inside the kernel body (false: parked, reusable)
  St st = St::Exited;
  uint32_t index = 0;  // linear thread index in the block (x fastest)
  uint3 tid{};
  Collective* req = nullptr;  // the collective this lane waits at (it lives on the lane's stack)
  Collective last;            // the last collective it completed (op, mask, width), for messages
  int bar_kind = 0, bar_pred = 0, bar_result = 0;
  void* fake_stack = nullptr;  // AddressSanitizer's fake stack while switched out
};

namespace {

// ---- configuration ------------------------------------------------------------------------------

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct Config {
  Schedule sched = Schedule::Forward;
  uint64_t seed = 1;
  size_t stack_kb = 256;
  Config() {
#if defined(MK_EMU_ASAN)
    stack_kb = 1024;  // instrumented frames carry redzones
#endif
    if (const char* s = std::getenv("MAMBAKIT_EMU_STACK_KB")) {
      const long v = std::atol(s);
      if (v >= 16) stack_kb = static_cast<size_t>(v);
      else std::fprintf(stderr, "mambakit emu: ignoring MAMBAKIT_EMU_STACK_KB=%s (need >= 16)\n", s);
    }
    if (const char* s = std::getenv("MAMBAKIT_EMU_SCHEDULE")) {
      const std::string v = s;
      if (v == "forward") sched = Schedule::Forward;
      else if (v == "reverse") sched = Schedule::Reverse;
      else if (v.rfind("random", 0) == 0) {
        sched = Schedule::Random;
        if (v.size() > 7 && v[6] == ':') seed = std::strtoull(v.c_str() + 7, nullptr, 0);
      } else {
        std::fprintf(stderr, "mambakit emu: unknown MAMBAKIT_EMU_SCHEDULE=%s, using forward\n", s);
      }
    }
  }
};
Config& cfg() {
  static Config c;
  return c;
}

Stats g_stats;

// ---- fibers -------------------------------------------------------------------------------------

jmp_buf g_sched;          // the scheduler, while a fiber runs
ucontext_t g_sched_uc;    // written by the first-entry swapcontext; never resumed
Lane* g_starting = nullptr;
const KernelTask* g_task = nullptr;
[[maybe_unused]] const void* g_sched_stack_bottom = nullptr;  // ASan: the scheduler's stack
[[maybe_unused]] size_t g_sched_stack_size = 0;
[[maybe_unused]] void* g_sched_fake = nullptr;
std::vector<std::unique_ptr<Lane>> g_lanes;  // the fiber pool, grown to the largest block

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

void free_stack(Lane& l) {
  if (l.stack) munmap(l.stack - page_size(), l.stack_size + page_size());
  l.stack = nullptr;
  l.started = false;
}

bool alloc_stack(Lane& l, size_t bytes) {
  free_stack(l);
  const size_t pg = page_size();
  bytes = (bytes + pg - 1) / pg * pg;
  void* m = mmap(nullptr, bytes + pg, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (m == MAP_FAILED) return false;
  mprotect(m, pg, PROT_NONE);  // overflowing the stack faults instead of corrupting a neighbor
  l.stack = static_cast<char*>(m) + pg;
  l.stack_size = bytes;
  return true;
}

#if defined(MK_EMU_ASAN)
// AddressSanitizer intercepts _longjmp to unpoison the stack frames a jump abandons, with a
// sigaltstack system call every time (~15x slower switches). A fiber switch abandons no
// instrumented frame (the switched-out frames stay live until resumed; abandon() unpoisons the
// stacks of fibers dropped after an error), so switches call libc's _longjmp directly.
using LongjmpFn = void (*)(struct __jmp_buf_tag*, int);
LongjmpFn real_longjmp() {
  static const LongjmpFn f = [] {
    void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    void* sym = libc ? dlsym(libc, "_longjmp") : nullptr;
    return sym ? reinterpret_cast<LongjmpFn>(sym) : &_longjmp;
  }();
  return f;
}
#define MK_EMU_LONGJMP(buf) real_longjmp()(buf, 1)
#else
#define MK_EMU_LONGJMP(buf) _longjmp(buf, 1)
#endif

// Switch from the running fiber to the scheduler; returns when the scheduler resumes the fiber.
inline void to_scheduler(Lane* l) {
#if defined(MK_EMU_ASAN)
  __sanitizer_start_switch_fiber(&l->fake_stack, g_sched_stack_bottom, g_sched_stack_size);
#endif
  if (_setjmp(l->jb) == 0) MK_EMU_LONGJMP(g_sched);
#if defined(MK_EMU_ASAN)
  __sanitizer_finish_switch_fiber(l->fake_stack, &g_sched_stack_bottom, &g_sched_stack_size);
#endif
}

// makecontext entry of every fiber: run the current kernel for the thread the scheduler assigned,
// park, repeat (the next block or launch resumes the parked fiber with _longjmp).
void fiber_main() {
  Lane* l = g_starting;
#if defined(MK_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &g_sched_stack_bottom, &g_sched_stack_size);
#endif
  for (;;) {
    l->in_kernel = true;
    g_task->run_thread(g_task);
    l->in_kernel = false;
    l->st = St::Exited;
    to_scheduler(l);
  }
}

// Switch from the scheduler into `l` until it yields again.
__attribute__((noinline)) void resume(Lane* l) {
  g_cur.thread_idx = l->tid;
  g_cur.lane = l;
  ++g_stats.switches;
#if defined(MK_EMU_ASAN)
  __sanitizer_start_switch_fiber(&g_sched_fake, l->stack, l->stack_size);
#endif
  if (_setjmp(g_sched) == 0) {
    if (l->started) MK_EMU_LONGJMP(l->jb);
    l->started = true;
    g_starting = l;
    ucontext_t uc;
    getcontext(&uc);
    uc.uc_stack.ss_sp = l->stack;
    uc.uc_stack.ss_size = l->stack_size;
    uc.uc_link = nullptr;
    makecontext(&uc, fiber_main, 0);
    swapcontext(&g_sched_uc, &uc);  // fiber_main comes back with _longjmp(g_sched)
  }
#if defined(MK_EMU_ASAN)
  __sanitizer_finish_switch_fiber(g_sched_fake, nullptr, nullptr);
#endif
  g_cur.lane = nullptr;
}

// ---- one block ----------------------------------------------------------------------------------

const char* op_name(const Collective& c) {
  switch (c.op) {
    case kSyncWarp: return "__syncwarp";
    case kShflIdx: return "__shfl_sync";
    case kShflUp: return "__shfl_up_sync";
    case kShflDown: return "__shfl_down_sync";
    case kShflXor: return "__shfl_xor_sync";
    case kShflIdx64: return "__shfl_sync (64-bit)";
    case kShflUp64: return "__shfl_up_sync (64-bit)";
    case kShflDown64: return "__shfl_down_sync (64-bit)";
    case kShflXor64: return "__shfl_xor_sync (64-bit)";
    case kBallot: return "__ballot_sync";
    case kAny: return "__any_sync";
    case kAll: return "__all_sync";
    case kMatchAny: return "__match_any_sync";
    case kMatchAny64: return "__match_any_sync (64-bit)";
    case kMatchAll: return "__match_all_sync";
    case kMatchAll64: return "__match_all_sync (64-bit)";
    case kReduceAddU: return "__reduce_add_sync";
    case kReduceMinU: case kReduceMinI: return "__reduce_min_sync";
    case kReduceMaxU: case kReduceMaxI: return "__reduce_max_sync";
    case kReduceAnd: return "__reduce_and_sync";
    case kReduceOr: return "__reduce_or_sync";
    case kReduceXor: return "__reduce_xor_sync";
    case kCustom: return c.name ? c.name : "warp collective";
    default: return "warp collective";
  }
}

bool is_shfl(uint32_t op) { return op >= kShflIdx && op <= kShflXor64; }

bool same_collective(const Collective& a, const Collective& b) {
  return a.op == b.op && a.mask == b.mask && a.width == b.width && a.tag == b.tag;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

int lowest(uint32_t m) { return __builtin_ctz(m); }

class Block {
 public:
  Block(const KernelTask& t, unsigned n, uint64_t rng) : t_(t), n_(n), nwarps_((n + 31) / 32), rng_(rng) {
    valid_.assign(nwarps_, ~0u);
    if (n % 32) valid_.back() = (1u << (n % 32)) - 1u;
    exited_.assign(nwarps_, 0u);
    barrier_.assign(nwarps_, 0u);
    waiting_.assign(nwarps_, 0u);
    first_.assign(nwarps_, nullptr);
    mixed_.assign(nwarps_, 0);
    cur_.reserve(n);
    next_.reserve(n);
  }

  // Runs block `b` to completion. False: a kernel error (code/message set), fibers abandoned.
  bool run(uint3 b) {
    bidx_ = b;
    g_cur.block_idx = b;
    const dim3 bd = t_.block;
    for (unsigned i = 0; i < n_; ++i) {
      Lane& l = *g_lanes[i];
      l.st = St::Runnable;
      l.index = i;
      l.tid = make_uint3(i % bd.x, (i / bd.x) % bd.y, i / (bd.x * bd.y));
      l.req = nullptr;
      l.last.op = 0;
    }
    std::fill(exited_.begin(), exited_.end(), 0u);
    std::fill(barrier_.begin(), barrier_.end(), 0u);
    std::fill(waiting_.begin(), waiting_.end(), 0u);
    exited_n_ = at_barrier_ = 0;
    cur_.clear();
    for (unsigned i = 0; i < n_; ++i) cur_.push_back(i);
    order(cur_);
    while (!cur_.empty()) {
      next_.clear();
      for (uint32_t i : cur_) {
        Lane* l = g_lanes[i].get();
        resume(l);
        if (!after_yield(l)) return false;
      }
      cur_.swap(next_);
      order(cur_);
    }
    if (exited_n_ != n_) return deadlock();
    return true;
  }

  cudaError_t code = cudaSuccess;
  std::string message;

 private:
  void order(std::vector<uint32_t>& v) {
    switch (cfg().sched) {
      case Schedule::Forward:  // rounds released by a barrier or a collective are mostly in order
        if (!std::is_sorted(v.begin(), v.end())) std::sort(v.begin(), v.end());
        break;
      case Schedule::Reverse:
        if (!std::is_sorted(v.begin(), v.end(), std::greater<uint32_t>())) std::sort(v.begin(), v.end(), std::greater<uint32_t>());
        break;
      case Schedule::Random:
        for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[splitmix(rng_) % i]);
        break;
    }
  }

  std::string who(const Lane* l) const {
    return fmt("thread (%u, %u, %u) [warp %u, lane %u]", l->tid.x, l->tid.y, l->tid.z, l->index / 32,
               l->index % 32);
  }
  std::string lane_desc(unsigned w, int lane) const { return who(g_lanes[w * 32 + lane].get()); }
  std::string coll_desc(const Collective& c) const {
    std::string s = fmt("%s(mask 0x%08x", op_name(c), c.mask);
    if (is_shfl(c.op) && c.width != 32) s += fmt(", width %d", c.width);
    return s + ")";
  }

  bool fail_at(const Lane* l, cudaError_t c, const std::string& what) {
    code = c;
    message = fmt("[mambakit emu] kernel %s, grid (%u, %u, %u), block (%u, %u, %u) of (%u, %u, %u) threads: ",
                  t_.name().c_str(), t_.grid.x, t_.grid.y, t_.grid.z, bidx_.x, bidx_.y, bidx_.z,
                  t_.block.x, t_.block.y, t_.block.z);
    message += (l ? who(l) + ": " : std::string()) + what;
    abandon();
    return false;
  }
  bool sync_error(const Lane* l, const std::string& what) { return fail_at(l, cudaErrorLaunchFailure, what); }

  // The fibers of this block that are inside the kernel are dropped: their next use starts afresh.
  void abandon() {
    for (unsigned i = 0; i < n_; ++i) {
      Lane& l = *g_lanes[i];
      if (!l.in_kernel) continue;
      l.in_kernel = false;
      l.started = false;
#if defined(MK_EMU_ASAN)
      __asan_unpoison_memory_region(l.stack, l.stack_size);  // frames left without their epilogues
#endif
    }
  }

  bool after_yield(Lane* l) {
    switch (l->st) {
      case St::Runnable: next_.push_back(l->index); return true;  // yield_now
      case St::Exited: return on_exit(l);
      case St::Barrier: return on_barrier(l);
      case St::Warp: return on_warp(l);
      case St::Failed: return fail_at(l, pending_code_, pending_what_);
    }
    return true;
  }

  bool on_exit(Lane* l) {
    const unsigned w = l->index / 32;
    const uint32_t bit = 1u << (l->index % 32);
    ++exited_n_;
    exited_[w] |= bit;
    if (at_barrier_ > 0)
      return sync_error(l, fmt("exited while %u other thread(s) wait at __syncthreads, e.g. %s "
                               "(divergent __syncthreads: every thread of the block must reach it)",
                               at_barrier_, first_at_barrier().c_str()));
    for (uint32_t m = waiting_[w]; m; m &= m - 1) {
      const Lane* o = g_lanes[w * 32 + lowest(m)].get();
      if (o->req->mask & bit)
        return sync_error(l, fmt("exited while %s waits for it at %s%s", who(o).c_str(),
                                 coll_desc(*o->req).c_str(), last_desc(l).c_str()));
    }
    return true;
  }

  // "; its last warp collective was ..." when that differs from what the others wait at.
  std::string last_desc(const Lane* l) const {
    if (!l->last.op) return "; it called no warp collective";
    return "; its last warp collective was " + coll_desc(l->last) +
           " (the lanes of a warp collective must call the same operation with the same mask)";
  }

  std::string first_at_barrier() const {
    for (unsigned w = 0; w < nwarps_; ++w)
      if (barrier_[w]) return lane_desc(w, lowest(barrier_[w]));
    return "?";
  }
  std::string first_exited() const {
    for (unsigned w = 0; w < nwarps_; ++w)
      if (exited_[w]) return lane_desc(w, lowest(exited_[w]));
    return "?";
  }

  bool on_barrier(Lane* l) {
    const unsigned w = l->index / 32;
    const uint32_t bit = 1u << (l->index % 32);
    if (exited_n_ > 0)
      return sync_error(l, fmt("reached __syncthreads after %s exited (divergent __syncthreads: every "
                               "thread of the block must reach it)", first_exited().c_str()));
    for (uint32_t m = waiting_[w]; m; m &= m - 1) {
      const Lane* o = g_lanes[w * 32 + lowest(m)].get();
      if (o->req->mask & bit)
        return sync_error(l, fmt("waits at __syncthreads while %s waits for it at %s", who(o).c_str(),
                                 coll_desc(*o->req).c_str()));
    }
    barrier_[w] |= bit;
    if (++at_barrier_ < n_) return true;
    // Everyone arrived: compute the _count/_and/_or results and release the block.
    int count = 0;
    for (unsigned i = 0; i < n_; ++i) count += g_lanes[i]->bar_pred != 0;
    for (unsigned i = 0; i < n_; ++i) {
      Lane& x = *g_lanes[i];
      x.bar_result = x.bar_kind == 1 ? count : x.bar_kind == 2 ? (count == static_cast<int>(n_)) : count > 0;
      x.st = St::Runnable;
      next_.push_back(i);
    }
    std::fill(barrier_.begin(), barrier_.end(), 0u);
    at_barrier_ = 0;
    return true;
  }

  bool on_warp(Lane* l) {
    const unsigned w = l->index / 32;
    const int lane = static_cast<int>(l->index % 32);
    const uint32_t bit = 1u << lane;
    const Collective& c = *l->req;
    if (!(c.mask & bit))
      return sync_error(l, fmt("calls %s with a mask that does not include the calling lane %d",
                               coll_desc(c).c_str(), lane));
    if (c.mask & ~valid_[w])
      return sync_error(l, fmt("%s names lane %d, which does not exist (the block has %u threads, so "
                               "warp %u has lanes 0-%d)", coll_desc(c).c_str(),
                               lowest(c.mask & ~valid_[w]), n_, w, 31 - __builtin_clz(valid_[w])));
    if (c.mask & exited_[w])
      return sync_error(l, fmt("%s names %s, which has exited", coll_desc(c).c_str(),
                               lane_desc(w, lowest(c.mask & exited_[w])).c_str()));
    if (c.mask & barrier_[w])
      return sync_error(l, fmt("%s names %s, which waits at __syncthreads", coll_desc(c).c_str(),
                               lane_desc(w, lowest(c.mask & barrier_[w])).c_str()));
    if (is_shfl(c.op) && (c.width < 1 || c.width > 32 || (c.width & (c.width - 1))))
      return sync_error(l, fmt("%s: width %d is not a power of two in [1, 32]", op_name(c), c.width));
    // Fast path: every lane already waiting in this warp waits at this very collective.
    if (waiting_[w] == 0) {
      first_[w] = &c;
      mixed_[w] = false;
    } else if (!mixed_[w] && !same_collective(c, *first_[w])) {
      mixed_[w] = true;
    }
    if (mixed_[w]) {
      // Lanes that name each other but wait at different collectives (or masks) wait forever.
      for (uint32_t m = c.mask & waiting_[w]; m; m &= m - 1) {
        const Lane* o = g_lanes[w * 32 + lowest(m)].get();
        if (!same_collective(c, *o->req) && (o->req->mask & bit))
          return sync_error(l, fmt("waits at %s while %s waits at %s: the lanes of a warp collective "
                                   "must call the same operation with the same mask",
                                   coll_desc(c).c_str(), who(o).c_str(), coll_desc(*o->req).c_str()));
      }
    }
    waiting_[w] |= bit;
    if (c.mask & ~waiting_[w]) return true;  // some named lanes have not arrived yet
    if (mixed_[w])
      for (uint32_t m = c.mask; m; m &= m - 1)
        if (!same_collective(c, *g_lanes[w * 32 + lowest(m)]->req)) return true;  // busy elsewhere
    return complete(l, w, c.mask);
  }

  // Every lane of `mask` in warp w waits at the same collective: compute and release them.
  bool complete(Lane* l, unsigned w, uint32_t mask) {
    ++g_stats.collectives;
    Collective* r[32] = {};
    for (uint32_t m = mask; m; m &= m - 1) r[lowest(m)] = g_lanes[w * 32 + lowest(m)]->req;
    const Collective& c = *r[lowest(mask)];
    const uint64_t vmask = (c.op == kMatchAny || c.op == kMatchAll) ? 0xffffffffull : ~0ull;
    switch (c.op) {
      case kSyncWarp: break;
      case kShflIdx: case kShflUp: case kShflDown: case kShflXor:
      case kShflIdx64: case kShflUp64: case kShflDown64: case kShflXor64: {
        // PTX shfl.sync: c = ((32 - width) << 8) | (up ? 0 : 31), segmask = c[12:8].
        const int op = static_cast<int>(c.op >= kShflIdx64 ? c.op - 4 : c.op);
        for (uint32_t m = mask; m; m &= m - 1) {
          const int lane = lowest(m);
          const int seg = (32 - r[lane]->width) & 31, b = r[lane]->arg & 31;
          const int cval = op == kShflUp ? 0 : 31;
          const int max_lane = (lane & seg) | (cval & ~seg), min_lane = lane & seg;
          int j = lane;
          bool ok = false;
          switch (op) {
            case kShflUp: j = lane - b; ok = j >= max_lane; break;
            case kShflDown: j = lane + b; ok = j <= max_lane; break;
            case kShflXor: j = lane ^ b; ok = j <= max_lane; break;
            default: j = min_lane | (b & ~seg); ok = j <= max_lane; break;
          }
          if (!ok) j = lane;
          if (!(mask & (1u << j)))
            return sync_error(g_lanes[w * 32 + lane].get(),
                              fmt("%s reads lane %d, which is not in the mask (its value is undefined)",
                                  coll_desc(c).c_str(), j));
          r[lane]->result = r[j]->value;
        }
        break;
      }
      case kBallot: case kAny: case kAll: {
        uint32_t bal = 0;
        for (uint32_t m = mask; m; m &= m - 1)
          if (r[lowest(m)]->value) bal |= 1u << lowest(m);
        const uint64_t v = c.op == kBallot ? bal : c.op == kAny ? (bal != 0) : (bal == mask);
        for (uint32_t m = mask; m; m &= m - 1) r[lowest(m)]->result = v;
        break;
      }
      case kMatchAny: case kMatchAny64: case kMatchAll: case kMatchAll64: {
        bool all = true;
        for (uint32_t m = mask; m; m &= m - 1) {
          const uint64_t v = r[lowest(m)]->value & vmask;
          uint32_t same = 0;
          for (uint32_t k = mask; k; k &= k - 1)
            if ((r[lowest(k)]->value & vmask) == v) same |= 1u << lowest(k);
          r[lowest(m)]->result = same;
          all = all && same == mask;
        }
        if (c.op == kMatchAll || c.op == kMatchAll64)
          for (uint32_t m = mask; m; m &= m - 1) {
            r[lowest(m)]->result = all ? mask : 0u;
            r[lowest(m)]->pred = all;
          }
        break;
      }
      case kReduceAddU: case kReduceMinU: case kReduceMaxU: case kReduceMinI: case kReduceMaxI:
      case kReduceAnd: case kReduceOr: case kReduceXor: {
        uint32_t acc = static_cast<uint32_t>(c.value);
        for (uint32_t m = mask & (mask - 1); m; m &= m - 1) {
          const uint32_t v = static_cast<uint32_t>(r[lowest(m)]->value);
          switch (c.op) {
            case kReduceAddU: acc += v; break;
            case kReduceMinU: acc = std::min(acc, v); break;
            case kReduceMaxU: acc = std::max(acc, v); break;
            case kReduceMinI: acc = static_cast<uint32_t>(std::min(static_cast<int32_t>(acc), static_cast<int32_t>(v))); break;
            case kReduceMaxI: acc = static_cast<uint32_t>(std::max(static_cast<int32_t>(acc), static_cast<int32_t>(v))); break;
            case kReduceAnd: acc &= v; break;
            case kReduceOr: acc |= v; break;
            default: acc ^= v; break;
          }
        }
        for (uint32_t m = mask; m; m &= m - 1) r[lowest(m)]->result = acc;
        break;
      }
      case kCustom: {
        char err[768] = {0};
        const int e = c.complete(r, err, sizeof err);
        if (e != cudaSuccess) return fail_at(l, static_cast<cudaError_t>(e), err);
        break;
      }
      default:
        return sync_error(l, fmt("unknown warp collective %u", c.op));
    }
    for (uint32_t m = mask; m; m &= m - 1) {
      Lane* x = g_lanes[w * 32 + lowest(m)].get();
      x->last.op = x->req->op;
      x->last.mask = x->req->mask;
      x->last.width = x->req->width;
      x->last.name = x->req->name;
      x->st = St::Runnable;
      next_.push_back(x->index);
    }
    waiting_[w] &= ~mask;
    if (waiting_[w] != 0 && mixed_[w]) {  // recompute the fast-path state for the lanes still waiting
      first_[w] = g_lanes[w * 32 + lowest(waiting_[w])]->req;
      mixed_[w] = false;
      for (uint32_t m = waiting_[w]; m; m &= m - 1)
        mixed_[w] = mixed_[w] || !same_collective(*first_[w], *g_lanes[w * 32 + lowest(m)]->req);
    }
    return true;
  }

  // No thread can run, yet some have not exited: describe one stuck collective.
  bool deadlock() {
    for (unsigned w = 0; w < nwarps_; ++w) {
      for (uint32_t m = waiting_[w]; m; m &= m - 1) {
        const Lane* l = g_lanes[w * 32 + lowest(m)].get();
        const Collective& c = *l->req;
        for (uint32_t k = c.mask; k; k &= k - 1) {
          const Lane* o = g_lanes[w * 32 + lowest(k)].get();
          if (o->st == St::Warp && same_collective(c, *o->req)) continue;
          return sync_error(l, fmt("deadlock: waits at %s, but %s waits at %s", coll_desc(c).c_str(),
                                   who(o).c_str(),
                                   o->st == St::Warp ? coll_desc(*o->req).c_str() : "__syncthreads"));
        }
      }
    }
    return sync_error(nullptr, fmt("deadlock: %u of %u threads exited, the others cannot continue",
                                   exited_n_, n_));
  }

  const KernelTask& t_;
  const unsigned n_, nwarps_;
  uint64_t rng_;
  uint3 bidx_{};
  unsigned exited_n_ = 0, at_barrier_ = 0;
  std::vector<uint32_t> valid_, exited_, barrier_, waiting_;  // per warp: lane bits
  std::vector<const Collective*> first_;  // per warp: a waiting lane's collective
  std::vector<char> mixed_;               // per warp: waiting lanes wait at different collectives
  std::vector<uint32_t> cur_, next_;

 public:
  cudaError_t pending_code_ = cudaSuccess;  // lane_fail's error, reported by after_yield
  std::string pending_what_;
};

Block* g_block = nullptr;

Lane* current_lane(const char* what) {
  Lane* l = g_cur.lane;
  if (!l) {
    std::fprintf(stderr, "mambakit emu: %s called outside a kernel launch\n", what);
    std::abort();
  }
  return l;
}

uint64_t g_launch_counter = 0;
thread_local bool t_in_kernel = false;  // this OS thread is inside run_kernel

}  // namespace

// ---- called by fibers (through cuda_emu.h) ------------------------------------------------------

void warp_collective(Collective& c) {
  Lane* l = current_lane("a warp collective");
  l->req = &c;
  l->st = St::Warp;
  to_scheduler(l);
}

int block_barrier(int kind, int pred) {
  Lane* l = current_lane("__syncthreads");
  l->bar_kind = kind;
  l->bar_pred = pred;
  l->st = St::Barrier;
  to_scheduler(l);
  return l->bar_result;
}

void yield_now() {
  Lane* l = current_lane("__nanosleep");
  l->st = St::Runnable;
  to_scheduler(l);
}

void lane_fail(cudaError_t code, const char* what) {
  Lane* l = current_lane("__trap");
  g_block->pending_code_ = code;
  g_block->pending_what_ = what;
  l->st = St::Failed;
  to_scheduler(l);
  std::abort();  // a failed fiber is never resumed
}

std::string KernelTask::name() const {
  const char* a = arg_types ? arg_types() : "";
  return text + "(" + a + ")";
}

// ---- a launch -----------------------------------------------------------------------------------

bool in_kernel() { return t_in_kernel; }

cudaError_t run_kernel(const KernelTask& t, std::string* message) {
  struct Flag {
    Flag() { t_in_kernel = true; }
    ~Flag() { t_in_kernel = false; }
  } flag;
  const unsigned n = t.block.x * t.block.y * t.block.z;
  const uint64_t gx = t.grid.x, gy = t.grid.y, nblocks = gx * gy * t.grid.z;
  const size_t stack = cfg().stack_kb * 1024;
  if (g_lanes.size() < n) g_lanes.resize(n);
  for (unsigned i = 0; i < n; ++i) {
    if (!g_lanes[i]) g_lanes[i] = std::make_unique<Lane>();
    Lane& l = *g_lanes[i];
    if (l.stack_size != (stack + page_size() - 1) / page_size() * page_size() && !alloc_stack(l, stack)) {
      *message = "[mambakit emu] cannot map fiber stacks (" + std::to_string(n) + " x " +
                 std::to_string(cfg().stack_kb) + " KiB); lower MAMBAKIT_EMU_STACK_KB";
      return cudaErrorLaunchOutOfResources;
    }
  }
  // Dynamic shared memory: exactly smem bytes (AddressSanitizer flags accesses past them),
  // poisoned with 0xFF before every block as uninitialized shared memory.
  void* dyn = nullptr;
  if (posix_memalign(&dyn, 256, t.smem ? t.smem : 1) != 0) {
    *message = "[mambakit emu] cannot allocate " + std::to_string(t.smem) + " bytes of dynamic shared memory";
    return cudaErrorMemoryAllocation;
  }
  std::unique_ptr<void, void (*)(void*)> dyn_guard(dyn, std::free);

  uint64_t seed = cfg().seed ^ (0xA24BAED4963EE407ull * ++g_launch_counter);
  Block blk(t, n, splitmix(seed));
  g_block = &blk;
  g_task = &t;
  g_cur.block_dim = t.block;
  g_cur.grid_dim = t.grid;
  g_cur.dyn_smem = dyn;
  ++g_stats.launches;
  // Block order: forward, reverse, or a random affine permutation k -> (a k + c) mod nblocks.
  uint64_t a = 1, c = 0;
  if (cfg().sched == Schedule::Random && nblocks > 1) {
    c = splitmix(seed) % nblocks;
    a = splitmix(seed) % nblocks | 1;
    auto gcd = [](uint64_t x, uint64_t y) { while (y) { const uint64_t r = x % y; x = y; y = r; } return x; };
    while (gcd(a, nblocks) != 1) a = (a + 2) % nblocks;
  }
  cudaError_t err = cudaSuccess;
  for (uint64_t k = 0; k < nblocks; ++k) {
    uint64_t b = k;
    if (cfg().sched == Schedule::Reverse) b = nblocks - 1 - k;
    else if (cfg().sched == Schedule::Random) b = static_cast<uint64_t>((static_cast<unsigned __int128>(a) * k + c) % nblocks);
    const uint3 bi = make_uint3(static_cast<unsigned>(b % gx), static_cast<unsigned>((b / gx) % gy),
                                static_cast<unsigned>(b / (gx * gy)));
    if (t.smem) std::memset(dyn, 0xFF, t.smem);
    ++g_stats.blocks;
    g_stats.threads += n;
    if (!blk.run(bi)) {
      err = blk.code;
      *message = blk.message;
      break;
    }
  }
  g_block = nullptr;
  g_task = nullptr;
  g_cur = Current{};
  return err;
}

}  // namespace detail

// ---- public knobs -------------------------------------------------------------------------------

void set_schedule(Schedule s, uint64_t seed) {
  detail::cfg().sched = s;
  detail::cfg().seed = seed;
}
Schedule schedule() { return detail::cfg().sched; }
uint64_t schedule_seed() { return detail::cfg().seed; }
const char* schedule_name(Schedule s) {
  return s == Schedule::Forward ? "forward" : s == Schedule::Reverse ? "reverse" : "random";
}
size_t set_stack_kb(size_t kb) {
  const size_t old = detail::cfg().stack_kb;
  if (kb >= 16) detail::cfg().stack_kb = kb;
  return old;
}
Stats stats() { return detail::g_stats; }

}  // namespace mk::emu
