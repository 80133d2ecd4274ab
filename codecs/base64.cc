#include "codecs/base64.h"

#include <array>
#include <cstdint>

namespace psl::codecs {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> MakeDecodeTable() {
  std::array<std::int8_t, 256> table{};
  for (auto& v : table) {
    v = -1;
  }
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  }
  return table;
}
constexpr std::array<std::int8_t, 256> kDecode = MakeDecodeTable();

bool IsXmlSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

Status Refuse(std::string_view defect, std::size_t offset) {
  return Status::Invalid("not base64: " + std::string(defect) + " at offset " +
                         std::to_string(offset));
}

}  // namespace

std::string EncodeBase64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t triple = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                                 (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                                 std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    out.push_back(kAlphabet[(triple >> 18) & 0x3F]);
    out.push_back(kAlphabet[(triple >> 12) & 0x3F]);
    out.push_back(kAlphabet[(triple >> 6) & 0x3F]);
    out.push_back(kAlphabet[triple & 0x3F]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t triple = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (rest == 2) {
      triple |= std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    }
    out.push_back(kAlphabet[(triple >> 18) & 0x3F]);
    out.push_back(kAlphabet[(triple >> 12) & 0x3F]);
    out.push_back(rest == 2 ? kAlphabet[(triple >> 6) & 0x3F] : '=');
    out.push_back('=');
  }
  return out;
}

StatusOr<std::string> DecodeBase64(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::array<std::uint32_t, 4> quantum{};
  int filled = 0;
  int padding = 0;
  bool ended = false;  // a padded quantum closes the text: nothing but whitespace may follow
  for (std::size_t at = 0; at < text.size(); ++at) {
    const char c = text[at];
    if (IsXmlSpace(c)) {
      continue;
    }
    if (ended) {
      return Refuse("data after the padding", at);
    }
    if (c == '=') {
      // Padding may fill only the last one or two places of the final quantum.
      if (filled < 2) {
        return Refuse("misplaced padding", at);
      }
      ++padding;
      quantum[filled++] = 0;
    } else {
      const std::int8_t v = kDecode[static_cast<unsigned char>(c)];
      if (v < 0) {
        return Refuse("a character outside the base64 alphabet", at);
      }
      if (padding > 0) {
        return Refuse("data after the padding", at);
      }
      quantum[filled++] = static_cast<std::uint32_t>(v);
    }
    if (filled == 4) {
      const std::uint32_t triple =
          (quantum[0] << 18) | (quantum[1] << 12) | (quantum[2] << 6) | quantum[3];
      out.push_back(static_cast<char>((triple >> 16) & 0xFF));
      if (padding < 2) {
        out.push_back(static_cast<char>((triple >> 8) & 0xFF));
      }
      if (padding < 1) {
        out.push_back(static_cast<char>(triple & 0xFF));
      }
      filled = 0;
      ended = padding > 0;
    }
  }
  if (filled != 0) {
    return Refuse("an incomplete final quantum (length is not a multiple of 4)", text.size());
  }
  return out;
}

StatusOr<std::string> DecodeBase64Of(std::string_view text, std::string_view what) {
  StatusOr<std::string> bytes = DecodeBase64(text);
  if (!bytes.ok()) {
    return Status::Invalid(std::string(what) + " is not valid base64 (" + bytes.status().message() +
                           ")");
  }
  return bytes;
}

}  // namespace psl::codecs
