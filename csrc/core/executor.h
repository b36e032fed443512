// The runtime's FIFO queue: every op, copy and read-back runs here, one after another, off the JS
// thread — like a CUDA stream for the whole addon. Submission order is execution order, so an op
// always sees the results of the ops submitted before it.
#pragma once
#include <functional>

namespace mk {

void executor_submit(std::function<void()> job);

}  // namespace mk
