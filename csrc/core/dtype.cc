#include "core/dtype.h"

namespace mk {

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do { man <<= 1; ++e; } while ((man & 0x400u) == 0);
      u = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | man << 13;
  } else {
    u = sign | (exp + 112) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (abs < 0x38800000u) {  // subnormal or zero in f16
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    uint32_t e = abs >> 23;
    uint32_t man = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14 + (113 - e) - 1
    uint32_t half = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);  // round to nearest even on the dropped 13 bits
  return static_cast<uint16_t>(sign | ((r - 0x38000000u) >> 13));
}

void convert_host(const void* src, DType sdt, void* dst, DType ddt, int64_t n) {
  if (n <= 0) return;  // (memcpy from a null source is undefined even for 0 bytes)
  if (sdt == ddt) {
    std::memcpy(dst, src, static_cast<size_t>(n) * dtype_size(sdt));
    return;
  }
  auto load = [&](int64_t i) -> float {
    switch (sdt) {
      case DType::F32: return static_cast<const float*>(src)[i];
      case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
      case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
      case DType::I32: return static_cast<float>(static_cast<const int32_t*>(src)[i]);
      case DType::U8: return static_cast<float>(static_cast<const uint8_t*>(src)[i]);
    }
    return 0.f;
  };
  for (int64_t i = 0; i < n; ++i) {
    float v = load(i);
    switch (ddt) {
      case DType::F32: static_cast<float*>(dst)[i] = v; break;
      case DType::F16: static_cast<uint16_t*>(dst)[i] = f32_to_f16(v); break;
      case DType::BF16: static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v); break;
      case DType::I32: static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(v); break;
      case DType::U8: static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(v); break;
    }
  }
}

}  // namespace mk
