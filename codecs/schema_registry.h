// SchemaRegistry: the eHealth/MyCareNet XSDs, compiled once at start-up and shared read-only.
//
// Reads schemas only from its root folder (configured; default ../shared/schemas): every load
// goes through a ScopedExternalLoader that refuses paths outside the root and records the SHA-256
// of each file read. libxml2 keeps only the first schema document per namespace, and all kmehr
// versions share one namespace, so one set is compiled per kmehr version; the set for a message
// is chosen from its CD-STANDARD value (the lowest compiled kmehr version whose CD-STANDARD code
// table lists it). Compiled sets are immutable: Validate() is thread-safe (it creates its own
// validation context per call).
//
// Sets compiled by Load():
//  * kMhm: the MHM protocol 1.0 schema (path at the enumerator below) and its imports.
//  * kEAttest, kEncryptedKnownContent: eAttest v3 and its sealed EncryptedKnownContent (paths at
//    the enumerators below) and their imports.
//  * kMediPrimaUma, kMediPrimaConsult: MediPrima UMA v1 and consultation v2 (paths at the
//    enumerators below) and their imports (eHealth commons core/protocol v2, xml.xsd).
//  * kGenAsync: the Generic Async v1 schema (eFact post, get, confirm; entry schema named in
//    schemas/SOURCES.md) and its imports (CIN commonTypes-v1.3, commonInfo-v2.3, xmlmime).
//  * one kmehr messageservices set per kmehr version 1.29, 1.32, 1.42. Upstream
//    messageservices_protocol-1_2.xsd imports messageservices_core-1_2.xsd, which imports kmehr
//    1.19 (too old for MHM). For each version V the registry generates, in memory only, a core
//    whose four kmehr imports (id, cd, dt, kmehr) point at ehealth-kmehr/XSD/*-1_V.xsd and a
//    protocol importing that core (libxml2 edits the schemaLocation attributes of the parsed
//    upstream files). They are served at virtual paths beside the upstream files
//    (".kmehr-1_V.generated.xsd"), never written to disk. For 1.32 the generated core is
//    equivalent to the shared messageservices_core-1_2.kmehr-1_32.LOCAL.xsd (tested).
//  * KmehrVersionFor: the CD-STANDARDvalues enumeration of each cd-1_V.xsd, each value mapped to
//    the lowest version listing it. With the stored files: the 34 values 20010424..20190901 ->
//    "1.29" (20181201, the MHM sample's, included); the 3 values 20200301..20200901 -> "1.32";
//    the 11 values 20201201..20250601 -> "1.42".
// Every file is read through the loader: absolute paths under the canonical root only (".." and
// symlinks resolved first); network URLs and anything else are refused and make Load() fail.
// libxml2 compile and validation errors go to structured handlers, never to stderr; the known
// harmless compile warning of mycarenet-commons-core-2_0/3_0 (xmlns:ns1="...v{version.major}",
// "not a valid URI") and other warnings are ignored, errors fail Load().
//
// Lifetime: construct the process's XmlLibrary first and destroy the registry before it.
#ifndef PSL_CODECS_SCHEMA_REGISTRY_H_
#define PSL_CODECS_SCHEMA_REGISTRY_H_

#include <libxml/tree.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/xml_handles.h"
#include "codecs/problem.h"

namespace psl::codecs {

// Envelope schema sets, one per request protocol.
enum class EnvelopeSchema {
  kMhm,  // ehealth-mycarenet-medicalhousemembership/XSD/mycarenet-medical-house-membership-protocol-1_0.xsd
  kGenAsync,  // mycarenet-genasync/XSD/mycarenet-genasync-v1.xsd (post/get/confirm, CIN common v2)
  // eAttest v3 (Send/CancelAttestationRequest/Response, commons protocol v4):
  // ehealth-mycarenet-attest/XSD/mycarenet-attest-protocol-3_0.xsd
  kEAttest,
  // urn:be:cin:encrypted EncryptedKnownContent (the sealed eAttest payload):
  // ehealth-mycarenet-attest/XSD/encryption/businessContent.xsd
  kEncryptedKnownContent,
  // MediPrima UMA v1 (Send/Search/DeleteUrgentMedicalAidAttestationRequest/Response, eHealth
  // commons protocol v2): ehealth-mediprima-uma/XSD/ehealth-mediprima-uma-protocol-1_0.xsd
  kMediPrimaUma,
  // MediPrima consultation v2 (ConsultCarmedInterventionRequest/Response):
  // ehealth-mediprima/XSD/ehealth-mediprima-protocol-2_0.xsd
  kMediPrimaConsult,
};

struct SchemaFileDigest {
  std::string relative_path;  // relative to the registry root
  std::string sha256_hex;
};

class SchemaRegistry {
 public:
  // Compiles every set. Fails (kFailedPrecondition) with a message naming the missing or broken
  // file when the root or a needed file is absent or does not compile.
  static StatusOr<std::unique_ptr<SchemaRegistry>> Load(const std::filesystem::path& root);

  // The folder to use when none is configured: $PSL_SCHEMAS_DIR if set, else ../shared/schemas
  // relative to the executable's or the working directory's project root when it exists.
  // Precisely: the first existing of <exe_dir>/../../shared/schemas, <exe_dir>/../shared/schemas,
  // ./../shared/schemas, ./shared/schemas (exe_dir from /proc/self/exe); else ../shared/schemas.
  static std::filesystem::path DefaultRoot();

  ~SchemaRegistry();
  SchemaRegistry(const SchemaRegistry&) = delete;
  SchemaRegistry& operator=(const SchemaRegistry&) = delete;

  // Validates `doc` against an envelope set. Appends one Problem per schema error (code
  // "PSL-SCHEMA", the libxml2 message without any element value, line, column, NodePath, and
  // `document` as given). Returns false when any error was found. At most 50 errors are reported
  // per call, followed by one Problem counting the rest. Validation records xs:ID attributes in
  // `doc` (libxml2), so one document must not be validated by two threads at once.
  bool ValidateEnvelope(EnvelopeSchema set, xmlDoc* doc, std::string_view document,
                        std::vector<Problem>* problems) const;

  // The kmehr version ("1.29", "1.32", "1.42") whose set validates messages declaring
  // CD-STANDARD `cd_standard` (e.g. "20181201"), or "" when no compiled version knows it.
  std::string KmehrVersionFor(std::string_view cd_standard) const;

  // Validates a kmehr messageservices SendTransactionRequest against the set of `kmehr_version`.
  bool ValidateKmehrRequest(std::string_view kmehr_version, xmlDoc* doc, std::string_view document,
                            std::vector<Problem>* problems) const;

  // Every file read while compiling, sorted by path, with its SHA-256 (lowercase hex of the
  // bytes read). Generated wrappers are listed too, as derived entries
  // "generated:messageservices_core-1_2@kmehr-1.42" / "generated:messageservices_protocol-1_2@..."
  // with the SHA-256 of the generated text.
  const std::vector<SchemaFileDigest>& LoadedFiles() const;

  // The text of each generated wrapper, keyed like its LoadedFiles() entry.
  const std::map<std::string, std::string>& GeneratedSchemas() const;

  // The canonical (absolute, symlink-free) root the sets were loaded from.
  const std::filesystem::path& root() const;

 private:
  struct Impl;
  explicit SchemaRegistry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A libxml2 schema error message made safe to show: trailing newline trimmed, and every quoted
// instance value replaced by '…' (the values `node` carries, and any quoted token that does not
// name a schema component), so no patient value leaks. Schema names, facets and short
// enumeration sets are kept. `node` may be null.
std::string SanitizeSchemaMessage(const char* libxml2_message, const xmlNode* node);

}  // namespace psl::codecs

#endif  // PSL_CODECS_SCHEMA_REGISTRY_H_
