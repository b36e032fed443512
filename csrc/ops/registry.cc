#include <memory>
#include <mutex>

#include "ops/op.h"

namespace mk {
namespace {
std::map<std::string, OpDef>& table() {
  static auto* t = new std::map<std::string, OpDef>();
  return *t;
}
}  // namespace

OpRegistrar::OpRegistrar(const OpDef& def) { table()[def.name] = def; }

const OpDef* find_op(const std::string& name) {
  auto it = table().find(name);
  return it == table().end() ? nullptr : &it->second;
}

std::vector<std::string> op_names() {
  std::vector<std::string> r;
  for (auto& kv : table()) r.push_back(kv.first);
  return r;
}

Status prepare_op(const OpDef& op, const Inputs& in, const Attrs& attrs, std::vector<Tensor>* outs) {
  if (static_cast<int>(in.size()) != op.num_inputs)
    return make_error(Code::ARG, std::string(op.name) + ": expected " + std::to_string(op.num_inputs) +
                                     " inputs, got " + std::to_string(in.size()));
  const Tensor* first = nullptr;
  for (int i = 0; i < op.num_inputs; ++i) {
    if (!in[i]) {
      if (!(op.optional_mask & (1u << i)))
        return make_error(Code::ARG, std::string(op.name) + ": input " + std::to_string(i) + " is required");
      continue;
    }
    if (!first) first = in[i];
    if (in[i]->device() != first->device())
      return make_error(Code::DEVICE, std::string(op.name) + ": inputs on different devices (" +
                                          first->desc() + " and " + in[i]->desc() + ")");
  }
  if (!first) return make_error(Code::ARG, std::string(op.name) + ": no inputs");
  const Device dev = first->device();
  Backend* be = nullptr;
  MK_RETURN_IF_ERROR(backend_for(dev, &be));
  std::vector<OutSpec> specs;
  MK_RETURN_IF_ERROR(op.check(in, attrs, &specs));
  outs->clear();
  for (const OutSpec& s : specs) {
    Tensor t;
    MK_RETURN_IF_ERROR(Tensor::create(dev, s.dtype, s.shape, &t));
    outs->push_back(std::move(t));
  }
  return Status::Ok();
}

Status execute_op(const OpDef& op, const Inputs& in, const Attrs& attrs, std::vector<Tensor>& outs) {
  const Tensor* first = nullptr;
  for (const Tensor* t : in)
    if (t && !first) first = t;
  Backend* be = nullptr;
  MK_RETURN_IF_ERROR(backend_for(first->device(), &be));
  const OpCall call{*be, op.name, in, outs, attrs};
  MK_RETURN_IF_ERROR(op.run(call));
  return be->finish(op.name);
}

}  // namespace mk
