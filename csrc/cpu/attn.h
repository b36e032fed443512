// Attention kernels on the CPU, on host pointers. Arguments, layouts and limits: core/attn.h
// (callers check attn_can_run / rope_can_run).
#pragma once
#include "core/attn.h"

namespace mk::cpu {

void attention(const AttnArgs& a);
void rope_kv(const RopeArgs& a);

}  // namespace mk::cpu
