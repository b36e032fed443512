// The eager op table (tests, research use): each op has one entry — a shape/dtype check that also
// infers the outputs, and one implementation written against the Backend (backend/backend.h), which
// is where the device is dispatched.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend/backend.h"
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
  Backend& be;  // the inputs' device
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
  ImplFn run;
};

const OpDef* find_op(const std::string& name);
std::vector<std::string> op_names();

struct OpRegistrar {
  explicit OpRegistrar(const OpDef& def);
};

// On the JS thread: arity, presence, one device for all inputs, the op's check, output allocation.
Status prepare_op(const OpDef& op, const Inputs& in, const Attrs& attrs, std::vector<Tensor>* outs);
// On the executor thread: runs the implementation on the inputs' backend, then waits for it (on
// CUDA), so an asynchronous fault is reported with this op's name.
Status execute_op(const OpDef& op, const Inputs& in, const Attrs& attrs, std::vector<Tensor>& outs);

}  // namespace mk
