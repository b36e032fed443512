// readTensor: one tensor's bytes read from a file (pread, on the executor) into a new tensor,
// converted between float dtypes on the host, then uploaded when the tensor lives on a GPU.
#include "binding/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <memory>
#include <string>
#include <system_error>

#include "binding/async_job.h"
#include "binding/tensor_wrap.h"
#include "core/threadpool.h"

namespace mk {
namespace {

// std::strerror may share a buffer between threads; the category message does not.
std::string errno_text(int e) { return std::generic_category().message(e); }

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads exactly `bytes` at `offset`: pread returns short counts on signals and caps one call near 2 GiB.
Status pread_all(int fd, const std::string& path, char* dst, size_t bytes, int64_t offset) {
  size_t done = 0;
  while (done < bytes) {
    const size_t chunk = std::min<size_t>(bytes - done, size_t{1} << 30);
    const ssize_t r = ::pread(fd, dst + done, chunk, static_cast<off_t>(offset + static_cast<int64_t>(done)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return make_error(Code::FORMAT, "readTensor: reading " + path + ": " + errno_text(errno));
    if (r == 0)
      return make_error(Code::FORMAT, "readTensor: " + path + " ended at byte " +
                                          std::to_string(offset + static_cast<int64_t>(done)) + " while reading (truncated?)");
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

class ReadTensorJob : public AsyncJob {
 public:
  ReadTensorJob(std::string path, int64_t offset, DType src, Tensor dst)
      : path_(std::move(path)), offset_(offset), src_(src), dst_(std::move(dst)) {}

  Status run() override {
    const int64_t n = dst_.numel();
    const int64_t bytes = n * dtype_size(src_);
    Fd f;
    f.fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) return make_error(Code::FORMAT, "readTensor: cannot open " + path_ + ": " + errno_text(errno));
    struct stat sb;
    if (::fstat(f.fd, &sb) != 0) return make_error(Code::FORMAT, "readTensor: cannot stat " + path_ + ": " + errno_text(errno));
    if (!S_ISREG(sb.st_mode)) return make_error(Code::FORMAT, "readTensor: " + path_ + " is not a regular file");
    const int64_t size = static_cast<int64_t>(sb.st_size);
    if (offset_ > size || bytes > size - offset_)
      return make_error(Code::FORMAT, "readTensor: " + path_ + " has " + std::to_string(size) + " bytes, but the tensor's data [" +
                                          std::to_string(offset_) + ", " + std::to_string(offset_ + bytes) + ") runs past its end");
    if (n == 0) return Status::Ok();

    const bool cuda = dst_.device().is_cuda();
    std::unique_ptr<char[]> file_stage, host_stage;  // freed on every path out
    void* host_dst = dst_.raw();
    if (cuda) {
      host_stage.reset(new char[dst_.nbytes()]);
      host_dst = host_stage.get();
    }
    // Same dtype: the bytes go from the file straight into the tensor's storage (no second copy).
    char* file_dst = static_cast<char*>(host_dst);
    if (src_ != dst_.dtype) {
      file_stage.reset(new char[static_cast<size_t>(bytes)]);
      file_dst = file_stage.get();
    }
    MK_RETURN_IF_ERROR(pread_all(f.fd, path_, file_dst, static_cast<size_t>(bytes), offset_));
    if (src_ != dst_.dtype) {
      const int ss = dtype_size(src_), ds = dtype_size(dst_.dtype);
      const DType sd = src_, dd = dst_.dtype;
      parallel_for(n, int64_t{1} << 16, [&](int64_t b, int64_t e) {
        convert_host(file_dst + b * ss, sd, static_cast<char*>(host_dst) + b * ds, dd, e - b);
      });
    }
    if (cuda) return gpu::copy_h2d(dst_.device().index, dst_.raw(), host_dst, dst_.nbytes());
    return Status::Ok();
  }

  Napi::Value result(Napi::Env env) override { return TensorWrap::wrap(env, dst_); }

 private:
  std::string path_;
  int64_t offset_;
  DType src_;
  Tensor dst_;
};

// Dims: integers in [0, 2^40], at most 8, and at most 2^48 elements in all (so byte counts fit).
Status parse_dims(Napi::Value v, Shape* out) {
  if (!v.IsArray()) return make_error(Code::SHAPE, "readTensor: shape must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 8) return make_error(Code::SHAPE, "readTensor: at most 8 dims are supported");
  double numel = 1;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    const double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0 && x <= 1099511627776.0 && std::floor(x) == x))
      return make_error(Code::SHAPE, "readTensor: shape dims must be integers >= 0, got dim " + std::to_string(i));
    numel *= x;
    out->push_back(static_cast<int64_t>(x));
  }
  if (numel > 281474976710656.0) return make_error(Code::SHAPE, "readTensor: shape " + shape_str(*out) + " is too large");
  return Status::Ok();
}

// readTensor(path, offset, srcDtype, dstDtype, shape, device) -> Promise<handle>. Argument checks and
// the allocation happen here, so a bad request rejects before any I/O is queued.
Napi::Value ReadTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber() ||
      !info[5].IsString())
    return rejected(env, make_error(Code::ARG, "readTensor(path, offset, srcDtype, dstDtype, shape, device)"));
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const double off = info[1].As<Napi::Number>().DoubleValue();
  if (!(off >= 0 && off <= 9007199254740991.0 && std::floor(off) == off))
    return rejected(env, make_error(Code::ARG, "readTensor: offset must be an integer >= 0 (" + path + ")"));
  const double sd = info[2].As<Napi::Number>().DoubleValue(), dd = info[3].As<Napi::Number>().DoubleValue();
  if (!(sd >= 0 && sd < kNumDTypes && std::floor(sd) == sd && dd >= 0 && dd < kNumDTypes && std::floor(dd) == dd))
    return rejected(env, make_error(Code::DTYPE, "readTensor: bad dtype id (" + path + ")"));
  const DType s = static_cast<DType>(static_cast<int>(sd)), d = static_cast<DType>(static_cast<int>(dd));
  if (s != d && !(is_float(s) && is_float(d)))
    return rejected(env, make_error(Code::DTYPE, std::string("readTensor: cannot convert ") + dtype_name(s) + " data in " +
                                                     path + " to " + dtype_name(d)));
  Shape shape;
  Device dev;
  Status st = parse_dims(info[4], &shape);
  if (st.ok()) st = parse_device(info[5].As<Napi::String>().Utf8Value(), &dev);
  Tensor dst;
  if (st.ok()) st = Tensor::create(dev, d, shape, &dst);
  if (!st.ok()) return rejected(env, st);
  return enqueue(env, std::make_unique<ReadTensorJob>(path, static_cast<int64_t>(off), s, std::move(dst)));
}

}  // namespace

void register_io(Napi::Env env, Napi::Object exports) {
  exports.Set("readTensor", Napi::Function::New(env, ReadTensor, "readTensor"));
}

}  // namespace mk
