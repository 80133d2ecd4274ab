// Api: the gateway's request handling above the socket (DESIGN.md "Public contracts", "Life of a
// message"): a parsed HttpRequest in, an HttpResponse out. No Asio, no sockets: the Beast server
// (https_server.h) calls Handle() for the practices' port and HandleOps() for the ops port, on
// worker threads (Handle may block on the store's synced commit).
//
// Practices' port:
//   POST /v1/enrolments | /v1/claims | /v1/amu | /v1/messages (flow detected)
//        practice → authenticate → media type → [SOAP 1.1 body taken out] → the codec of the
//        root element decodes and validates (every problem, 422) → sender == authenticated
//        practice (403) → route → admission: the destination's pending deliveries
//        (DurableQueue::Stats depth) at its max_backlog give 503 + Retry-After (the excess at
//        the delivery rate depth / oldest age, 1..300 s; PSL-BACKLOG-FULL; nothing stored or
//        audited, no idempotency key recorded; passerelle_intake_shed_total{reason="backlog"})
//        → new message id written into the document → XAdES sign
//        (practice key, else gateway key; a request already signed is verified against `trust`
//        instead) → Commit → 202 {id, kind, flow, operation, insurer, state}. Per root element:
//          MHM Send/Cancel/NotifySubscriptionClosure: kind enrolment, flow mhm; sender = the
//            author NIHII; routed on the mutuality (or the member registry); id in root @Id
//            ("_<uuid v4>"); Xades.
//          genasync post, MessageName HCPFAC / ECM-HCPFAC (eFact): kind claim / amu, flow efact,
//            operation post; GenAsyncCodec (record number → line, zone → path, 6-digit codes);
//            sender = the file's sender (record 10 zone 14); routed to the batch's insurer (its
//            union, or 690); id in CommonInput/InputReference; Xades-t (SignGenAsyncPost).
//          eAttest v3 SendAttestation/CancelAttestation: kind claim, flow eattest;
//            EAttestCodec (authenticated practice = CareProvider and kmehr author); routed on
//            Routing/CareReceiver/Mutuality (or the member registry, or the hub); id in root @Id;
//            no XAdES of the practice: the request is sealed (PrepareRequestXmlForInsurer, the
//            practice's own signing identity, else the gateway's, as signer and Reply-to —
//            chosen as for signed requests; the destination's encryption_cert_file)
//            and the SEALED request is what is committed; delivery numbers attempts.
//          MediPrima UMA Send/Search/DeleteUrgentMedicalAidAttestation and consult v2
//            ConsultCarmedIntervention: kind amu, flow mediprima; MediPrimaCodec; routed to 690
//            (its mediprima_uma_url / mediprima_consult_url); id in root @Id; sent unsigned
//            (MediPrima bodies carry no XAdES). Author rule: a physician's certificate (NIHII
//            1…) must be the Author of Send/Delete (PSL-MEDIPRIMA-AUTHOR-MISMATCH, 422); any
//            other practice (a medical house, 8…) may send Send/Delete only for the physicians
//            of its [practices.<nihii>] physicians list, else PSL-MEDIPRIMA-AUTHOR-NOT-LISTED
//            (422, a content error of the request like the other author rules); an empty or
//            absent list allows no physician (fail closed). Search/Consult name no Author. The
//            patient pseudonym is of BeneficiarySsin (NISS or BIS).
//        A document sent to another kind's endpoint is a 422 naming the right one.
//   GET  /v1/messages/{id}, /v1/messages/{id}/answer,
//   /v1/messages?state=&kind=&since=&cursor=&limit=
//        owning practice only (another practice's id is a 404, audited as a denial). An
//        enrolment shows its one `answer`; an eFact claim/amu shows `answer` (the delivery's
//        TAck: decision received / refused), `returns` (the insurer's eFact returns from its
//        mailbox: accepted / refused / accepted-with-errors, with codes) and `decision`/`codes`
//        of the latest answer, where a "received" never hides an earlier decision; /answer is
//        that latest answer's document.
//   GET  /v1/admin/dead-letters?cursor=&limit=, POST /v1/admin/messages/{id}/replay   ops
//   GET  /v1/audit?practice=&patient=&kind=&from=&to=&cursor=&limit=, GET /v1/audit/verify
//        auditor; every query is audited first (fail closed: 503 when it cannot be)
// Ops port: GET /healthz, /readyz, /metrics (no authentication: the port is the boundary).
//
// Errors are application/problem+json {type, title, status, detail, errors?}, the status from
// HttpStatusFor (405 for a known path with another method). No response, log line or status
// message ever holds a NISS, a name or an amount; a patient appears only as its keyed pseudonym.
// Every authentication or authorisation denial is audited ("denied").
// Each request updates passerelle_requests_total{kind,status} and
// passerelle_request_duration_seconds{kind}, kind = enrolment | claim | amu | messages (POST
// /v1/messages of no known flow) | status | answer | list | admin | audit | ops | other, and
// writes one log line (Logger: path without query, status, practice, message id, duration).
//
// Thread-safety: Handle/HandleOps may be called concurrently; every dependency is borrowed and
// must be thread-safe and outlive the Api.
#ifndef PSL_GATEWAY_API_H_
#define PSL_GATEWAY_API_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <openssl/x509_vfy.h>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"
#include "codecs/schema_registry.h"
#include "gateway/auth.h"
#include "gateway/config.h"
#include "gateway/http_types.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/routing.h"
#include "store/store.h"

namespace psl::gateway {

// What GET /readyz reports; the app computes it (store writable, schemas loaded, keys valid and
// not about to expire, not draining). `reasons` say why not ready (no secrets, no patient data).
struct Readiness {
  bool ready = false;
  std::vector<std::string> reasons;
};
using ReadinessProbe = std::function<Readiness()>;

// Borrowed dependencies (none owned). Required: config, queue, audit, schemas, clock, routing,
// and a signing identity for every practice (its own in practice_identities, else
// gateway_identity). Optional: signing_clock, trust, metrics, logger, readiness, on_committed.
struct ApiDeps {
  const Config* config = nullptr;
  store::DurableQueue* queue = nullptr;
  store::AuditLog* audit = nullptr;
  const codecs::SchemaRegistry* schemas = nullptr;
  // "Now" for the business date rules and the response times.
  const Clock* clock = nullptr;
  // "Now" for signing (SigningTime, certificate validity); null = `clock`. Differs only in tests
  // that validate dated samples with certificates issued today.
  const Clock* signing_clock = nullptr;
  const RoutingTable* routing = nullptr;
  const SigningIdentity* gateway_identity = nullptr;  // fallback signing key; may be null
  std::map<std::string, const SigningIdentity*> practice_identities;  // by practice NIHII
  X509_STORE* trust = nullptr;  // verifies requests that arrive already signed; may be null
  // MyCareNet's encryption certificate per insurer key: eAttest requests routed to that insurer
  // are sealed for it with gateway_identity (its certificate is the Reply-to: the answer comes
  // back sealed for it). An eAttest routed to an insurer without one is refused (500, logged).
  std::map<std::string, const X509*> encryption_certs;
  Metrics* metrics = nullptr;  // may be null (no metrics)
  std::string pseudonym_key;   // HMAC key of patient pseudonyms (>= 32 bytes)
  ReadinessProbe readiness;    // empty = never ready ("no readiness probe")
  Logger* logger = nullptr;    // null = a Logger to stderr owned by the Api
  // Called once per destination after a new message is committed (not for an idempotent
  // duplicate) and after a replay, e.g. to wake that insurer's delivery worker. Runs on the
  // request's thread: must be quick and must not block. May be empty.
  std::function<void(const std::string& insurer)> on_committed;
};

class Api {
 public:
  // `deps` must satisfy the requirements above (a missing required pointer is a start-up bug:
  // release-fatal).
  explicit Api(ApiDeps deps);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;
  Api(Api&&) = delete;
  Api& operator=(Api&&) = delete;

  // The practices' port. Never throws.
  HttpResponse Handle(const HttpRequest& request);
  // The ops port: /healthz, /readyz, /metrics. Never throws.
  HttpResponse HandleOps(const HttpRequest& request);

 private:
  struct Context;
  HttpResponse Dispatch(const HttpRequest& request, Context& ctx);
  HttpResponse Intake(const HttpRequest& request, const std::string& endpoint_kind, Context& ctx);
  // 503 + Retry-After when `insurer`'s pending deliveries reached its max_backlog (counted in
  // passerelle_intake_shed_total{reason="backlog"}); nullopt to go on. A retry whose
  // Idempotency-Key the practice already used goes on: the commit answers it with the original
  // message (or a 409), which adds nothing to the backlog.
  std::optional<HttpResponse> ShedForBacklog(const std::string& insurer,
                                             const std::string& practice_nihii,
                                             const std::string& idempotency_key, Context& ctx);
  HttpResponse GetMessage(const HttpRequest& request, const std::string& id, bool answer,
                          Context& ctx);
  HttpResponse ListMessages(const HttpRequest& request, Context& ctx);
  HttpResponse ListDeadLetters(const HttpRequest& request, Context& ctx);
  HttpResponse ReplayMessage(const HttpRequest& request, const std::string& id, Context& ctx);
  HttpResponse QueryAudit(const HttpRequest& request, Context& ctx);
  HttpResponse VerifyAudit(const HttpRequest& request, Context& ctx);

  // Authorises `role`; on failure audits the denial and fills *denied with the 401/403.
  std::optional<Principal> Require(const HttpRequest& request, Role role, Context& ctx,
                                   HttpResponse* denied);
  void AuditDenial(const std::string& actor, const std::string& practice,
                   const std::string& message_id, int status, const std::string& reason,
                   Context& ctx);
  void Finish(const HttpRequest& request, const HttpResponse& response, Context& ctx);

  ApiDeps deps_;
  Authenticator auth_;
  std::unique_ptr<Logger> own_logger_;
  Logger* logger_;
  GatewayMetrics metrics_;
};

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_API_H_
