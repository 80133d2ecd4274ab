#include "codecs/xmlsec_library.h"

#include <libxml/parser.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/openssl/evp.h>
#include <xmlsec/parser.h>
#include <xmlsec/xmlsec.h>
#include <zlib.h>

#include <cstring>
#include <mutex>
#include <new>
#include <utility>

namespace psl::codecs {
namespace {

// The optional-deflate transform: a binary transform that raw-inflates its input.

struct InflateState {
  z_stream stream{};
  bool initialised = false;
  bool ended = false;
  std::size_t produced = 0;
};

// Room for one pointer to the state after the xmlSecTransform.
constexpr xmlSecSize kInflateObjSize = sizeof(xmlSecTransform) + sizeof(void*);

InflateState*& StateOf(xmlSecTransformPtr transform) {
  // xmlsec allocates objSize bytes; the bytes after the xmlSecTransform are ours.
  return *reinterpret_cast<InflateState**>(reinterpret_cast<xmlSecByte*>(transform) +
                                           sizeof(xmlSecTransform));
}

void ReportError(xmlSecTransformPtr transform, int reason, const char* message) {
  xmlSecError(__FILE__, __LINE__, __func__,
              reinterpret_cast<const char*>(xmlSecTransformGetName(transform)), nullptr, reason,
              "%s", message);
}

int InflateInitialize(xmlSecTransformPtr transform) {
  auto* state = new (std::nothrow) InflateState;
  if (state == nullptr) {
    return -1;
  }
  if (inflateInit2(&state->stream, -MAX_WBITS) != Z_OK) {  // negative bits: raw RFC 1951
    delete state;
    return -1;
  }
  state->initialised = true;
  StateOf(transform) = state;
  return 0;
}

void InflateFinalize(xmlSecTransformPtr transform) {
  InflateState*& state = StateOf(transform);
  if (state == nullptr) {
    return;
  }
  if (state->initialised) {
    inflateEnd(&state->stream);
  }
  delete state;
  state = nullptr;
}

int InflateExecute(xmlSecTransformPtr transform, int last, xmlSecTransformCtxPtr /*ctx*/) {
  InflateState* state = StateOf(transform);
  if (state == nullptr) {
    return -1;
  }
  if (transform->status == xmlSecTransformStatusNone) {
    transform->status = xmlSecTransformStatusWorking;
  }
  if (transform->status == xmlSecTransformStatusFinished) {
    return xmlSecBufferGetSize(&transform->inBuf) == 0 ? 0 : -1;
  }
  if (transform->status != xmlSecTransformStatusWorking) {
    return -1;
  }

  xmlSecBufferPtr in = &transform->inBuf;
  xmlSecBufferPtr out = &transform->outBuf;
  const xmlSecSize in_size = xmlSecBufferGetSize(in);
  if (in_size > 0 && state->ended) {
    ReportError(transform, XMLSEC_ERRORS_R_INVALID_DATA,
                "data after the end of the deflate stream");
    return -1;
  }
  state->stream.next_in = xmlSecBufferGetData(in);
  state->stream.avail_in = in_size;
  unsigned char chunk[16 * 1024];
  while (state->stream.avail_in > 0 && !state->ended) {
    state->stream.next_out = chunk;
    state->stream.avail_out = sizeof(chunk);
    const int rc = inflate(&state->stream, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      ReportError(transform, XMLSEC_ERRORS_R_INVALID_DATA, "input is not raw deflate data");
      return -1;
    }
    const std::size_t n = sizeof(chunk) - state->stream.avail_out;
    state->produced += n;
    if (state->produced > kMaxInflatedBytes) {
      ReportError(transform, XMLSEC_ERRORS_R_INVALID_SIZE, "inflated data exceeds the size limit");
      return -1;
    }
    if (n > 0 && xmlSecBufferAppend(out, chunk, static_cast<xmlSecSize>(n)) < 0) {
      return -1;
    }
    if (rc == Z_STREAM_END) {
      state->ended = true;
    }
    if (rc == Z_BUF_ERROR && n == 0) {
      break;  // needs more input
    }
  }
  if (state->stream.avail_in > 0) {
    ReportError(transform, XMLSEC_ERRORS_R_INVALID_DATA,
                "data after the end of the deflate stream");
    return -1;
  }
  if (xmlSecBufferRemoveHead(in, in_size) < 0) {
    return -1;
  }
  if (last != 0) {
    if (!state->ended) {
      ReportError(transform, XMLSEC_ERRORS_R_INVALID_DATA, "truncated deflate stream");
      return -1;
    }
    transform->status = xmlSecTransformStatusFinished;
  }
  return 0;
}

// xmlsec keeps the pointer: the class must outlive every use, hence static constant data.
const xmlSecTransformKlass kInflateKlass = {
    sizeof(xmlSecTransformKlass),
    kInflateObjSize,
    reinterpret_cast<const xmlChar*>("optional-deflate"),
    reinterpret_cast<const xmlChar*>(kOptionalDeflateTransformHref),
    xmlSecTransformUsageDSigTransform,
    InflateInitialize,
    InflateFinalize,
    nullptr,  // readNode
    nullptr,  // writeNode
    nullptr,  // setKeyReq
    nullptr,  // setKey
    nullptr,  // verify
    xmlSecTransformDefaultGetDataType,
    xmlSecTransformDefaultPushBin,
    xmlSecTransformDefaultPopBin,
    nullptr,  // pushXml
    nullptr,  // popXml
    InflateExecute,
    nullptr,
    nullptr,
};

// Error routing.

thread_local XmlSecErrorCollector* current_collector = nullptr;

void CollectError(const char* /*file*/, int /*line*/, const char* func, const char* error_object,
                  const char* error_subject, int reason, const char* msg) {
  if (current_collector == nullptr) {
    return;
  }
  std::string text = func != nullptr ? func : "xmlsec";
  text += ": ";
  const char* reason_text = nullptr;
  for (xmlSecSize i = 0; (reason_text = xmlSecErrorsGetMsg(i)) != nullptr; ++i) {
    if (xmlSecErrorsGetCode(i) == reason) {
      break;
    }
  }
  text += reason_text != nullptr ? reason_text : "error " + std::to_string(reason);
  if (error_object != nullptr && std::strcmp(error_object, "unknown") != 0) {
    text += std::string(" [") + error_object + "]";
  }
  if (error_subject != nullptr && std::strcmp(error_subject, "unknown") != 0) {
    text += std::string(" (") + error_subject + ")";
  }
  if (msg != nullptr && std::strcmp(msg, XMLSEC_ERRORS_NO_MESSAGE) != 0) {
    text += std::string(": ") + msg;
  }
  current_collector->Append(text);
}

// Reference-counted initialisation.

std::mutex init_mutex;  // constexpr-constructed: no dynamic initialisation order issue
int init_count = 0;
Status* init_status = nullptr;  // owned while init_count > 0

Status Initialise() {
  if (xmlSecInit() < 0) {
    return Status::FailedPrecondition("xmlSecInit failed");
  }
  if (xmlSecCheckVersion() != 1) {
    return Status::FailedPrecondition("xmlsec library version does not match its headers");
  }
  // Parsers xmlsec creates itself (transform input): no network, no entities, no DTD.
  xmlSecParserSetDefaultOptions(XML_PARSE_NONET | XML_PARSE_NODICT);
  if (xmlSecCryptoAppInit(nullptr) < 0) {
    return Status::FailedPrecondition("xmlSecCryptoAppInit (OpenSSL) failed");
  }
  if (xmlSecCryptoInit() < 0) {
    return Status::FailedPrecondition("xmlSecCryptoInit failed");
  }
  if (xmlSecTransformIdsRegister(&kInflateKlass) < 0) {
    return Status::FailedPrecondition("cannot register the optional-deflate transform");
  }
  // Last: xmlSecInit and the OpenSSL back end each install their own (stderr) callback.
  xmlSecErrorsSetCallback(CollectError);
  return Status::Ok();
}

}  // namespace

xmlSecTransformId OptionalDeflateTransformId() {
  return &kInflateKlass;
}

XmlSecLibrary::XmlSecLibrary() {
  std::lock_guard<std::mutex> lock(init_mutex);
  if (init_count++ == 0) {
    init_status = new Status(Initialise());
  }
}

XmlSecLibrary::~XmlSecLibrary() {
  std::lock_guard<std::mutex> lock(init_mutex);
  if (--init_count > 0) {
    return;
  }
  if (init_status->ok()) {
    xmlSecCryptoShutdown();
    xmlSecCryptoAppShutdown();
  }
  xmlSecShutdown();
  delete init_status;
  init_status = nullptr;
}

const Status& XmlSecLibrary::status() const {
  return *init_status;
}

XmlSecErrorCollector::XmlSecErrorCollector() : previous_(current_collector) {
  current_collector = this;
}

XmlSecErrorCollector::~XmlSecErrorCollector() {
  current_collector = previous_;
}

std::string XmlSecErrorCollector::Text() const {
  return text_;
}

void XmlSecErrorCollector::Append(const std::string& error) {
  constexpr int kMaxErrors = 4;  // the first errors carry the cause; the rest is unwinding
  if (++count_ > kMaxErrors) {
    return;
  }
  if (!text_.empty()) {
    text_ += "; ";
  }
  text_ += error;
}

const char* DSigStatusName(xmlSecDSigStatus s) {
  switch (s) {
    case xmlSecDSigStatusSucceeded:
      return "succeeded";
    case xmlSecDSigStatusInvalid:
      return "invalid";
    default:
      return "unknown";
  }
}

xmlSecKeyPtr MakeXmlSecKey(EVP_PKEY* pkey) {
  EVP_PKEY_up_ref(pkey);
  xmlSecKeyDataPtr data = xmlSecOpenSSLEvpKeyAdopt(pkey);
  if (data == nullptr) {
    EVP_PKEY_free(pkey);
    return nullptr;
  }
  xmlSecKeyPtr key = xmlSecKeyCreate();
  if (key == nullptr || xmlSecKeySetValue(key, data) < 0) {
    xmlSecKeyDataDestroy(data);
    if (key != nullptr) {
      xmlSecKeyDestroy(key);
    }
    return nullptr;
  }
  return key;
}

Status SignTemplate(xmlNode* signature, EVP_PKEY* key) {
  XmlSecDSigCtxPtr dsig(xmlSecDSigCtxCreate(nullptr));
  if (dsig == nullptr) {
    return Status::Internal("xmlSecDSigCtxCreate failed");
  }
  dsig->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
  dsig->signKey = MakeXmlSecKey(key);
  if (dsig->signKey == nullptr) {
    return Status::Internal("xmlsec does not accept the signing key");
  }
  XmlSecErrorCollector errors;
  if (xmlSecDSigCtxSign(dsig.get(), signature) < 0 || dsig->status != xmlSecDSigStatusSucceeded) {
    return Status::Internal("xmlsec signing failed: " + errors.Text());
  }
  return Status::Ok();
}

}  // namespace psl::codecs
