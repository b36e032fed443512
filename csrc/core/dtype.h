// The one table of element types: id, name, size. Half types are stored as raw uint16 bits on the
// host; conversions are explicit and exact (round-to-nearest-even).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace mk {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2, I32 = 3, U8 = 4 };
constexpr int kNumDTypes = 5;

struct DTypeInfo {
  DType id;
  const char* name;
  int size;
};
constexpr DTypeInfo kDTypes[kNumDTypes] = {
    {DType::F32, "f32", 4}, {DType::F16, "f16", 2}, {DType::BF16, "bf16", 2},
    {DType::I32, "i32", 4}, {DType::U8, "u8", 1},
};
static_assert(sizeof(kDTypes) / sizeof(kDTypes[0]) == kNumDTypes, "dtype table size");

inline int dtype_size(DType d) { return kDTypes[static_cast<int>(d)].size; }
inline const char* dtype_name(DType d) { return kDTypes[static_cast<int>(d)].name; }
inline bool dtype_from_name(const std::string& s, DType* out) {
  for (const auto& e : kDTypes)
    if (s == e.name) { *out = e.id; return true; }
  return false;
}
inline bool is_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Converts n elements between float dtypes (f32/f16/bf16), host memory.
void convert_host(const void* src, DType sdt, void* dst, DType ddt, int64_t n);

}  // namespace mk
