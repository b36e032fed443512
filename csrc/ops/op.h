// The op table: each op has one entry — a shape/dtype check that also infers the outputs, a CPU
// implementation and a CUDA implementation. This is the one place that dispatches on device.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mk {

struct Attrs {
  std::map<std::string, double> values;
  bool has(const std::string& k) const { return values.count(k) != 0; }
  double get(const std::string& k, double dflt) const {
    auto it = values.find(k);
    return it == values.end() ? dflt : it->second;
  }
};

struct OutSpec {
  DType dtype;
  Shape shape;
};

using Inputs = std::vector<const Tensor*>;  // nullptr marks an absent optional input

struct OpCall {
  const char* name;
  const Inputs& in;
  std::vector<Tensor>& out;
  const Attrs& attrs;
};

using CheckFn = Status (*)(const Inputs&, const Attrs&, std::vector<OutSpec>*);
using ImplFn = Status (*)(const OpCall&);

struct OpDef {
  const char* name;
  int num_inputs;          // inputs in order; optional ones may be nullptr
  uint32_t optional_mask;  // bit i set: input i may be absent
  CheckFn check;
  ImplFn cpu;
  ImplFn cuda;  // nullptr in a CPU-only build
};

const OpDef* find_op(const std::string& name);
std::vector<std::string> op_names();

struct OpRegistrar {
  explicit OpRegistrar(const OpDef& def);
};

// On the JS thread: arity, presence, one device for all inputs, the op's check, output allocation.
Status prepare_op(const OpDef& op, const Inputs& in, const Attrs& attrs, std::vector<Tensor>* outs);
// On the executor thread: runs the implementation for the inputs' device. A CUDA op is synchronized
// afterwards, so an asynchronous fault is reported with this op's name.
Status execute_op(const OpDef& op, const Inputs& in, const Attrs& attrs, std::vector<Tensor>& outs);

}  // namespace mk

#ifdef MAMBAKIT_CUDA
#define MK_CUDA_IMPL(fn) fn
#else
#define MK_CUDA_IMPL(fn) nullptr
#endif
