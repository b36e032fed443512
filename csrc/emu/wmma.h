// nvcuda::wmma for the SIMT emulator: a reference implementation of the m16n16k16 subset gemm.cu
// uses (f16/bf16 matrix_a/matrix_b fragments, row_major or col_major; f32 accumulators; load,
// store, fill, mma). Included by cuda_emu.h; <mma.h> is empty outside nvcc, so there is no clash.
//
// Fragment layout: each lane holds num_elements = 8 of the 256 elements of a 16x16 tile, in a layout
// of the emulator's own that is deliberately NOT the hardware's (which is unspecified): element
// e = row * 16 + col is held by lane (e + R * (e / 32)) % 32 in slot e / 32, with a rotation R that
// differs between matrix_a (5), matrix_b (11) and the accumulator (3). Code that treats x[i] of a
// fragment uniformly (scaling, filling, conversion) behaves as on the GPU; code that assumes where
// an element lives gets wrong results here, as it would on some GPU.
//
// load_matrix_sync, store_matrix_sync and mma_sync are warp collectives over all 32 lanes: when
// every lane has arrived, the whole operation is done at once for all lanes. As CUDA requires, the
// pointer, ldm and layout must be the same in every lane, the pointer 256-bit (32-byte) aligned and
// ldm a multiple of 16 bytes; a violation fails the launch (cudaErrorMisalignedAddress for the
// alignment rules, cudaErrorLaunchFailure otherwise). mma_sync computes D = A * B + C in f32 from
// the f16/bf16 inputs (products are exact in f32, the sum runs over k in order); tensor cores round
// the sum differently, so compare against it with a tolerance.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstdio>
#include <type_traits>

#include "simt.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

namespace emu {

template <class Use> struct Rot;
template <> struct Rot<matrix_a> { static constexpr int v = 5; };
template <> struct Rot<matrix_b> { static constexpr int v = 11; };
template <> struct Rot<accumulator> { static constexpr int v = 3; };
// The tile element held in `slot` of `lane`.
constexpr int elem_of(int rot, int lane, int slot) { return slot * 32 + ((lane - rot * slot) & 31); }

inline float to_f32(float v) { return v; }
inline float to_f32(__half v) { return __half2float(v); }
inline float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T> inline T from_f32(float v);
template <> inline float from_f32<float>(float v) { return v; }
template <> inline __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> inline __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <class L> constexpr bool is_row = std::is_same_v<L, row_major>;
template <class Op> inline const char tag = 0;  // one identity per operation and instantiation

using ::mk::emu::detail::Collective;

// The same pointer, ldm and layout in every lane; a 32-byte aligned pointer; ldm % 16 bytes == 0.
template <class T>
inline int check_args(const char* op, Collective* const* r, char* err, size_t n) {
  const Collective& c0 = *r[0];
  for (int l = 1; l < 32; ++l)
    if (r[l]->p[1] != c0.p[1] || r[l]->u[0] != c0.u[0] || r[l]->u[1] != c0.u[1]) {
      std::snprintf(err, n, "%s: lane %d passes pointer %p, ldm %llu, layout %llu but lane 0 passes %p, "
                    "ldm %llu, layout %llu (they must be the same in every lane)", op, l, r[l]->p[1],
                    static_cast<unsigned long long>(r[l]->u[0]), static_cast<unsigned long long>(r[l]->u[1]),
                    c0.p[1], static_cast<unsigned long long>(c0.u[0]), static_cast<unsigned long long>(c0.u[1]));
      return cudaErrorLaunchFailure;
    }
  if (reinterpret_cast<uintptr_t>(c0.p[1]) % 32 != 0) {
    std::snprintf(err, n, "%s: pointer %p is not 256-bit (32-byte) aligned", op, c0.p[1]);
    return cudaErrorMisalignedAddress;
  }
  if ((c0.u[0] * sizeof(T)) % 16 != 0) {
    std::snprintf(err, n, "%s: ldm %llu is not a multiple of %zu elements (16 bytes)", op,
                  static_cast<unsigned long long>(c0.u[0]), 16 / sizeof(T));
    return cudaErrorMisalignedAddress;
  }
  return cudaSuccess;
}

// Element (row, col) of the matrix at p with leading dimension ldm.
template <class T>
inline T* at(T* p, uint64_t ldm, bool row, int r, int c) { return row ? p + r * ldm + c : p + c * ldm + r; }

template <class Frag, class T>
struct Load {
  static int complete(Collective* const* r, char* err, size_t n) {
    if (int e = check_args<T>("wmma::load_matrix_sync", r, err, n)) return e;
    const T* p = static_cast<const T*>(r[0]->p[1]);
    const bool row = r[0]->u[1] == mem_row_major;
    for (int l = 0; l < 32; ++l) {
      Frag& f = *static_cast<Frag*>(r[l]->p[0]);
      for (int s = 0; s < Frag::num_elements; ++s) {
        const int e = elem_of(Frag::rot, l, s);
        f.x[s] = *at(p, r[0]->u[0], row, e / 16, e % 16);
      }
    }
    return cudaSuccess;
  }
};

template <class Frag>
struct Store {
  static int complete(Collective* const* r, char* err, size_t n) {
    if (int e = check_args<float>("wmma::store_matrix_sync", r, err, n)) return e;
    float* p = static_cast<float*>(r[0]->p[1]);
    const bool row = r[0]->u[1] == mem_row_major;
    for (int l = 0; l < 32; ++l) {
      const Frag& f = *static_cast<const Frag*>(r[l]->p[0]);
      for (int s = 0; s < Frag::num_elements; ++s) {
        const int e = elem_of(Frag::rot, l, s);
        *at(p, r[0]->u[0], row, e / 16, e % 16) = f.x[s];
      }
    }
    return cudaSuccess;
  }
};

template <class Frag>
inline void gather(Collective* const* r, int which, float (*m)[16]) {
  for (int l = 0; l < 32; ++l) {
    const Frag& f = *static_cast<const Frag*>(r[l]->p[which]);
    for (int s = 0; s < Frag::num_elements; ++s) {
      const int e = elem_of(Frag::rot, l, s);
      m[e / 16][e % 16] = to_f32(f.x[s]);
    }
  }
}

template <class FD, class FA, class FB, class FC>
struct Mma {
  static int complete(Collective* const* r, char*, size_t) {
    float a[16][16], b[16][16], c[16][16];
    gather<FA>(r, 1, a);
    gather<FB>(r, 2, b);
    gather<FC>(r, 3, c);
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j) {
        float acc = c[i][j];
        for (int k = 0; k < 16; ++k) acc += a[i][k] * b[k][j];
        c[i][j] = acc;  // row i of c is not read again
      }
    for (int l = 0; l < 32; ++l) {
      FD& d = *static_cast<FD*>(r[l]->p[0]);
      for (int s = 0; s < FD::num_elements; ++s) {
        const int e = elem_of(FD::rot, l, s);
        d.x[s] = from_f32<typename FD::element_type>(c[e / 16][e % 16]);
      }
    }
    return cudaSuccess;
  }
};

inline void run(const void* tag, const char* name, ::mk::emu::detail::CompleteFn fn, void* p0, void* p1,
                void* p2 = nullptr, void* p3 = nullptr, uint64_t ldm = 0, uint64_t layout = 0) {
  Collective c;
  c.op = ::mk::emu::detail::kCustom;
  c.mask = 0xffffffffu;
  c.tag = tag;
  c.name = name;
  c.complete = fn;
  c.p[0] = p0;
  c.p[1] = p1;
  c.p[2] = p2;
  c.p[3] = p3;
  c.u[0] = ldm;
  c.u[1] = layout;
  ::mk::emu::detail::warp_collective(c);
}

}  // namespace emu

template <class Use, int M, int N, int K, class T, class Layout = void>
class fragment {
  static_assert(M == 16 && N == 16 && K == 16, "the emulator implements only m16n16k16 wmma fragments");
  static_assert(std::is_same_v<Use, accumulator>
                    ? std::is_same_v<T, float> && std::is_void_v<Layout>
                    : (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>) &&
                          (std::is_same_v<Layout, row_major> || std::is_same_v<Layout, col_major>),
                "the emulator implements f16/bf16 matrix_a/matrix_b fragments (row_major or col_major) "
                "and f32 accumulators");

 public:
  using element_type = T;
  using storage_element_type = T;
  enum { num_elements = 8, num_storage_elements = 8 };
  static constexpr int rot = emu::Rot<Use>::v;
  T x[num_elements];
};

template <class Use, int M, int N, int K, class T, class L>
inline void fill_fragment(fragment<Use, M, N, K, T, L>& f,
                          const typename fragment<Use, M, N, K, T, L>::element_type& v) {
  for (auto& e : f.x) e = v;
}

template <class Use, class T, class L>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, L>& f, const T* p, unsigned ldm) {
  static_assert(!std::is_same_v<Use, accumulator>, "accumulator loads take a layout_t");
  using F = fragment<Use, 16, 16, 16, T, L>;
  emu::run(&emu::tag<emu::Load<F, T>>, "wmma::load_matrix_sync", &emu::Load<F, T>::complete, &f,
           const_cast<T*>(p), nullptr, nullptr, ldm, emu::is_row<L> ? mem_row_major : mem_col_major);
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm,
                             layout_t layout) {
  using F = fragment<accumulator, 16, 16, 16, float>;
  emu::run(&emu::tag<emu::Load<F, float>>, "wmma::load_matrix_sync", &emu::Load<F, float>::complete, &f,
           const_cast<float*>(p), nullptr, nullptr, ldm, layout);
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm,
                              layout_t layout) {
  using F = fragment<accumulator, 16, 16, 16, float>;
  emu::run(&emu::tag<emu::Store<F>>, "wmma::store_matrix_sync", &emu::Store<F>::complete,
           const_cast<F*>(&f), p, nullptr, nullptr, ldm, layout);
}

template <class T, class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d,
                     const fragment<matrix_a, 16, 16, 16, T, LA>& a,
                     const fragment<matrix_b, 16, 16, 16, T, LB>& b,
                     const fragment<accumulator, 16, 16, 16, float>& c) {
  using FD = fragment<accumulator, 16, 16, 16, float>;
  using FA = fragment<matrix_a, 16, 16, 16, T, LA>;
  using FB = fragment<matrix_b, 16, 16, 16, T, LB>;
  using Op = emu::Mma<FD, FA, FB, FD>;
  emu::run(&emu::tag<Op>, "wmma::mma_sync", &Op::complete, &d, const_cast<FA*>(&a), const_cast<FB*>(&b),
           const_cast<FD*>(&c));
}

}  // namespace wmma
}  // namespace nvcuda
