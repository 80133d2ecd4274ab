#include "codecs/deflate.h"

#include <zlib.h>

#include <array>
#include <limits>

namespace psl::codecs {
namespace {

// Negative window bits select raw deflate (no header, no checksum).
constexpr int kRawWindowBits = -MAX_WBITS;

// Owns a z_stream set up by the matching init call; End (inflateEnd or deflateEnd) releases it.
template <int (*End)(z_streamp)>
class ZStream {
 public:
  ZStream() = default;
  ~ZStream() {
    if (ready_) {
      End(&zs_);
    }
  }
  ZStream(const ZStream&) = delete;
  ZStream& operator=(const ZStream&) = delete;

  // Records the result of the init call made on get(); true when the stream is usable.
  bool Ready(int init_result) {
    ready_ = init_result == Z_OK;
    return ready_;
  }
  z_stream* get() { return &zs_; }

 private:
  z_stream zs_{};
  bool ready_ = false;
};

}  // namespace

StatusOr<std::string> InflateRaw(std::string_view deflated, std::size_t max_bytes) {
  if (deflated.size() > std::numeric_limits<uInt>::max()) {
    return Status::TooLarge("the deflated data is larger than zlib can take in one call");
  }
  ZStream<inflateEnd> stream;
  if (!stream.Ready(inflateInit2(stream.get(), kRawWindowBits))) {
    return Status::Internal("zlib inflateInit2 failed");
  }
  z_stream* zs = stream.get();
  // zlib only reads through next_in; its API lacks the const.
  zs->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(deflated.data()));
  zs->avail_in = static_cast<uInt>(deflated.size());
  std::string out;
  std::array<char, 16384> buffer{};
  while (true) {
    zs->next_out = reinterpret_cast<Bytef*>(buffer.data());
    zs->avail_out = static_cast<uInt>(buffer.size());
    const int rc = inflate(zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      // Z_DATA_ERROR for bad data; Z_BUF_ERROR when the input ends before the stream does.
      return Status::Malformed(
          "not one complete raw deflate stream (RFC 1951, no zlib or gzip "
          "header)");
    }
    const std::size_t produced = buffer.size() - zs->avail_out;
    if (out.size() + produced > max_bytes) {
      return Status::TooLarge("inflates to more than " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buffer.data(), produced);
    if (rc == Z_STREAM_END) {
      break;
    }
  }
  if (zs->avail_in != 0) {
    return Status::Malformed("bytes follow the end of the raw deflate stream");
  }
  return out;
}

StatusOr<std::string> DeflateRaw(std::string_view bytes) {
  if (bytes.size() > std::numeric_limits<uInt>::max()) {
    return Status::TooLarge("the data is larger than zlib can take in one call");
  }
  ZStream<deflateEnd> stream;
  if (!stream.Ready(deflateInit2(stream.get(), Z_DEFAULT_COMPRESSION, Z_DEFLATED, kRawWindowBits, 8,
                                 Z_DEFAULT_STRATEGY))) {
    return Status::Internal("zlib deflateInit2 failed");
  }
  z_stream* zs = stream.get();
  std::string out(deflateBound(zs, static_cast<uLong>(bytes.size())), '\0');
  zs->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs->avail_in = static_cast<uInt>(bytes.size());
  zs->next_out = reinterpret_cast<Bytef*>(out.data());
  zs->avail_out = static_cast<uInt>(out.size());
  // deflateBound guarantees room for the whole stream, so one Z_FINISH call completes it.
  if (deflate(zs, Z_FINISH) != Z_STREAM_END) {
    return Status::Internal("zlib deflate did not complete the stream");
  }
  out.resize(zs->total_out);
  return out;
}

}  // namespace psl::codecs
