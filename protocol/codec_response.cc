// Responses: proto::Response <-> tally.wire.Response (declared in
// protocol/codec.h; the request half and the shared checks are in codec.cc).

#include <string>
#include <utility>
#include <variant>

#include "protocol/codec.h"
#include "protocol/codec_internal.h"
#include "tally_generated.h"

namespace tally {
namespace {

using codec_internal::BytesOf;
using codec_internal::FieldReader;
using codec_internal::TextOf;
using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;
using flatbuffers::Vector;

uint16_t CodeOf(Code code) { return static_cast<uint16_t>(code); }

// ------------------------------------------------------------------ encode

// Recursion is bounded by the server's replies, which nest two or three
// levels; the reader's verifier refuses anything deeper than
// kVerifierMaxDepth.
Offset<wire::AdminReply> EncodeAdminReply(FlatBufferBuilder& fbb,
                                          const proto::AdminReply& r) {
  Offset<Vector<Offset<wire::AdminReply>>> elements = 0;
  if (!r.elements.empty()) {
    std::vector<Offset<wire::AdminReply>> offsets;
    offsets.reserve(r.elements.size());
    for (const proto::AdminReply& e : r.elements) {
      offsets.push_back(EncodeAdminReply(fbb, e));
    }
    elements = fbb.CreateVector(offsets);
  }
  Offset<flatbuffers::String> text = 0;
  if (!r.text.empty()) text = TextOf(fbb, r.text);
  wire::AdminReplyBuilder b(fbb);
  b.add_integer(r.integer);
  b.add_text(text);
  b.add_elements(elements);
  b.add_kind(static_cast<wire::AdminReplyKind>(r.kind));
  return b.Finish();
}

Offset<Vector<Offset<wire::AddItemResult>>> EncodeAddResults(
    FlatBufferBuilder& fbb, const std::vector<proto::AddItemResult>& items) {
  std::vector<Offset<wire::AddItemResult>> offsets;
  offsets.reserve(items.size());
  for (const proto::AddItemResult& r : items) {
    auto message = TextOf(fbb, r.message);
    wire::AddItemResultBuilder b(fbb);
    b.add_time_ms(r.time_ms);
    b.add_lsn(r.lsn);
    b.add_message(message);
    b.add_code(CodeOf(r.code));
    b.add_duplicate(r.duplicate);
    offsets.push_back(b.Finish());
  }
  return fbb.CreateVector(offsets);
}

// The answer fields shared by QueryItemResult and RangePoint.
template <typename Builder>
void AddAnswer(Builder& b, const proto::Aggregates& a) {
  b.add_count(a.count);
  b.add_sum(a.sum);
  b.add_min(a.min);
  b.add_max(a.max);
  b.add_avg(a.avg);
  b.add_distinct(a.distinct);
  b.add_distinct_error(a.distinct_error);
  b.add_covered_from_ms(a.covered_from_ms);
  b.add_covered_to_ms(a.covered_to_ms);
  b.add_resolution_ms(a.resolution_ms);
  b.add_exact(a.exact);
}

template <typename T>
proto::Aggregates ReadAnswer(const T& in) {
  return {.count = in.count(),
          .sum = in.sum(),
          .min = in.min(),
          .max = in.max(),
          .avg = in.avg(),
          .distinct = in.distinct(),
          .exact = in.exact(),
          .distinct_error = in.distinct_error(),
          .covered_from_ms = in.covered_from_ms(),
          .covered_to_ms = in.covered_to_ms(),
          .resolution_ms = in.resolution_ms()};
}

Offset<Vector<Offset<wire::QueryItemResult>>> EncodeQueryResults(
    FlatBufferBuilder& fbb, const std::vector<proto::QueryItemResult>& items) {
  std::vector<Offset<wire::QueryItemResult>> offsets;
  offsets.reserve(items.size());
  for (const proto::QueryItemResult& r : items) {
    auto message = TextOf(fbb, r.message);
    wire::QueryItemResultBuilder b(fbb);
    AddAnswer(b, r.answer);
    b.add_lsn(r.lsn);
    b.add_message(message);
    b.add_code(CodeOf(r.code));
    offsets.push_back(b.Finish());
  }
  return fbb.CreateVector(offsets);
}

struct BodyEncoder {
  FlatBufferBuilder& fbb;
  wire::ResponseBody* type;

  Offset<void> operator()(const std::monostate&) {
    *type = wire::ResponseBody::NONE;
    return 0;
  }
  Offset<void> operator()(const proto::HelloResult& r) {
    auto name = TextOf(fbb, r.server_name);
    auto version = TextOf(fbb, r.server_version);
    wire::HelloResultBuilder b(fbb);
    b.add_server_time_ms(r.server_time_ms);
    b.add_server_name(name);
    b.add_server_version(version);
    b.add_protocol_version(r.protocol_version);
    *type = wire::ResponseBody::HelloResult;
    return b.Finish().Union();
  }
  Offset<void> operator()(const proto::PingResult&) {
    *type = wire::ResponseBody::PingResult;
    return wire::CreatePingResult(fbb).Union();
  }
  Offset<void> operator()(const proto::AddResult& r) {
    auto items = EncodeAddResults(fbb, r.items);
    *type = wire::ResponseBody::AddResult;
    return wire::CreateAddResult(fbb, items).Union();
  }
  Offset<void> operator()(const proto::QueryResult& r) {
    auto items = EncodeQueryResults(fbb, r.items);
    *type = wire::ResponseBody::QueryResult;
    return wire::CreateQueryResult(fbb, items).Union();
  }
  Offset<void> operator()(const proto::AddAndQueryResult& r) {
    auto adds = EncodeAddResults(fbb, r.adds);
    auto queries = EncodeQueryResults(fbb, r.queries);
    *type = wire::ResponseBody::AddAndQueryResult;
    return wire::CreateAddAndQueryResult(fbb, adds, queries).Union();
  }
  Offset<void> operator()(const proto::RangeResult& r) {
    std::vector<Offset<wire::RangePoint>> points;
    points.reserve(r.points.size());
    for (const proto::RangePoint& p : r.points) {
      wire::RangePointBuilder b(fbb);
      b.add_start_ms(p.start_ms);
      AddAnswer(b, p.answer);
      points.push_back(b.Finish());
    }
    auto vec = fbb.CreateVector(points);
    wire::RangeResultBuilder b(fbb);
    b.add_lsn(r.lsn);
    b.add_points(vec);
    *type = wire::ResponseBody::RangeResult;
    return b.Finish().Union();
  }
  Offset<void> operator()(const proto::InspectResult& r) {
    std::vector<Offset<wire::TierInfo>> tiers;
    tiers.reserve(r.tiers.size());
    for (const proto::TierInfo& t : r.tiers) {
      wire::TierInfoBuilder b(fbb);
      b.add_resolution_ms(t.resolution_ms);
      b.add_retention_ms(t.retention_ms);
      b.add_first_bucket_ms(t.first_bucket_ms);
      b.add_last_bucket_ms(t.last_bucket_ms);
      b.add_bytes(t.bytes);
      b.add_buckets(t.buckets);
      b.add_sketches(t.sketches);
      tiers.push_back(b.Finish());
    }
    auto tier_vec = fbb.CreateVector(tiers);
    auto key = BytesOf(fbb, r.key);
    auto policy = TextOf(fbb, r.policy);
    wire::InspectResultBuilder b(fbb);
    b.add_max_lateness_ms(r.max_lateness_ms);
    b.add_max_skew_ms(r.max_skew_ms);
    b.add_bytes(r.bytes);
    b.add_key(key);
    b.add_policy(policy);
    b.add_tiers(tier_vec);
    b.add_raw_events(r.raw_events);
    b.add_track_distinct(r.track_distinct);
    b.add_raw(r.raw);
    *type = wire::ResponseBody::InspectResult;
    return b.Finish().Union();
  }
  Offset<void> operator()(const proto::ScanResult& r) {
    std::vector<Offset<wire::Bytes>> keys;
    keys.reserve(r.keys.size());
    for (const std::string& key : r.keys) {
      keys.push_back(wire::CreateBytes(fbb, BytesOf(fbb, key)));
    }
    auto vec = fbb.CreateVector(keys);
    *type = wire::ResponseBody::ScanResult;
    return wire::CreateScanResult(fbb, r.cursor, vec).Union();
  }
  Offset<void> operator()(const proto::DeleteResult& r) {
    std::vector<Offset<wire::DeleteItemResult>> items;
    items.reserve(r.items.size());
    for (const proto::DeleteItemResult& d : r.items) {
      auto message = TextOf(fbb, d.message);
      wire::DeleteItemResultBuilder b(fbb);
      b.add_message(message);
      b.add_code(CodeOf(d.code));
      b.add_existed(d.existed);
      items.push_back(b.Finish());
    }
    auto vec = fbb.CreateVector(items);
    *type = wire::ResponseBody::DeleteResult;
    return wire::CreateDeleteResult(fbb, vec).Union();
  }
  Offset<void> operator()(const proto::InfoResult& r) {
    auto text = TextOf(fbb, r.text);
    *type = wire::ResponseBody::InfoResult;
    return wire::CreateInfoResult(fbb, text).Union();
  }
  Offset<void> operator()(const proto::AuthResult& r) {
    auto id = TextOf(fbb, r.token_id);
    auto role = TextOf(fbb, r.role);
    *type = wire::ResponseBody::AuthResult;
    return wire::CreateAuthResult(fbb, id, role).Union();
  }
  Offset<void> operator()(const proto::AdminResult& r) {
    auto reply = EncodeAdminReply(fbb, r.reply);
    *type = wire::ResponseBody::AdminResult;
    return wire::CreateAdminResult(fbb, reply).Union();
  }
};

// ------------------------------------------------------------------ decode

std::vector<proto::AddItemResult> DecodeAddResults(
    const Vector<Offset<wire::AddItemResult>>* in, FieldReader& f) {
  std::vector<proto::AddItemResult> out;
  if (in == nullptr) return out;
  out.reserve(in->size());
  for (const wire::AddItemResult* r : *in) {
    out.push_back({.code = static_cast<Code>(r->code()),
                   .message = f.Text(r->message()),
                   .time_ms = r->time_ms(),
                   .duplicate = r->duplicate(),
                   .lsn = r->lsn()});
  }
  return out;
}

std::vector<proto::QueryItemResult> DecodeQueryResults(
    const Vector<Offset<wire::QueryItemResult>>* in, FieldReader& f) {
  std::vector<proto::QueryItemResult> out;
  if (in == nullptr) return out;
  out.reserve(in->size());
  for (const wire::QueryItemResult* r : *in) {
    out.push_back({.code = static_cast<Code>(r->code()),
                   .message = f.Text(r->message()),
                   .answer = ReadAnswer(*r),
                   .lsn = r->lsn()});
  }
  return out;
}

std::vector<std::string> DecodeKeys(const Vector<Offset<wire::Bytes>>* in,
                                    FieldReader& f) {
  std::vector<std::string> out;
  if (in == nullptr) return out;
  out.reserve(in->size());
  for (const wire::Bytes* key : *in) out.push_back(f.Bytes(key->data()));
  return out;
}

// The recursion depth is bounded by the verifier (kVerifierMaxDepth), and
// the element count by its max_tables.
proto::AdminReply DecodeAdminReply(const wire::AdminReply& in, FieldReader& f) {
  using Kind = proto::AdminReply::Kind;
  proto::AdminReply out;
  const auto kind = static_cast<uint8_t>(in.kind());
  // A kind this client does not know (a newer server) shows as its text.
  out.kind = kind <= static_cast<uint8_t>(Kind::kMap) ? static_cast<Kind>(kind)
                                                      : Kind::kText;
  out.integer = in.integer();
  out.text = f.Text(in.text());
  if (in.elements() != nullptr) {
    out.elements.reserve(in.elements()->size());
    for (const wire::AdminReply* e : *in.elements()) {
      out.elements.push_back(DecodeAdminReply(*e, f));
    }
  }
  return out;
}

// Decodes the verified body of `in` into *out.
Status DecodeBody(const wire::Response& in, FieldReader& f,
                  proto::Response* out) {
  const wire::ResponseBody type = in.body_type();
  if (type != wire::ResponseBody::NONE && in.body() == nullptr) {
    return Status(Code::kProtocolError,
                  "response of type " + std::to_string(static_cast<int>(type)) +
                      " has no body table");
  }
  switch (type) {
    case wire::ResponseBody::NONE:
      if (out->code == Code::kOk) {
        return Status(Code::kProtocolError, "OK response without a body");
      }
      return Status::Ok();
    case wire::ResponseBody::HelloResult: {
      const wire::HelloResult* r = in.body_as_HelloResult();
      auto& hello = out->body.emplace<proto::HelloResult>();
      hello.server_name = f.Text(r->server_name());
      hello.server_version = f.Text(r->server_version());
      hello.protocol_version = r->protocol_version();
      hello.server_time_ms = r->server_time_ms();
      return Status::Ok();
    }
    case wire::ResponseBody::PingResult:
      out->body = proto::PingResult{};
      return Status::Ok();
    case wire::ResponseBody::AddResult:
      out->body = proto::AddResult{
          .items = DecodeAddResults(in.body_as_AddResult()->items(), f)};
      return Status::Ok();
    case wire::ResponseBody::QueryResult:
      out->body = proto::QueryResult{
          .items = DecodeQueryResults(in.body_as_QueryResult()->items(), f)};
      return Status::Ok();
    case wire::ResponseBody::AddAndQueryResult: {
      const wire::AddAndQueryResult* r = in.body_as_AddAndQueryResult();
      out->body = proto::AddAndQueryResult{
          .adds = DecodeAddResults(r->adds(), f),
          .queries = DecodeQueryResults(r->queries(), f)};
      return Status::Ok();
    }
    case wire::ResponseBody::RangeResult: {
      const wire::RangeResult* r = in.body_as_RangeResult();
      proto::RangeResult range;
      range.lsn = r->lsn();
      if (r->points() != nullptr) {
        range.points.reserve(r->points()->size());
        for (const wire::RangePoint* p : *r->points()) {
          range.points.push_back(
              {.start_ms = p->start_ms(), .answer = ReadAnswer(*p)});
        }
      }
      out->body = std::move(range);
      return Status::Ok();
    }
    case wire::ResponseBody::InspectResult: {
      const wire::InspectResult* r = in.body_as_InspectResult();
      proto::InspectResult info{.key = f.Bytes(r->key()),
                                .policy = f.Text(r->policy()),
                                .track_distinct = r->track_distinct(),
                                .max_lateness_ms = r->max_lateness_ms(),
                                .max_skew_ms = r->max_skew_ms(),
                                .raw = r->raw(),
                                .raw_events = r->raw_events(),
                                .tiers = {},
                                .bytes = r->bytes()};
      if (r->tiers() != nullptr) {
        info.tiers.reserve(r->tiers()->size());
        for (const wire::TierInfo* t : *r->tiers()) {
          info.tiers.push_back({.resolution_ms = t->resolution_ms(),
                                .retention_ms = t->retention_ms(),
                                .buckets = t->buckets(),
                                .sketches = t->sketches(),
                                .first_bucket_ms = t->first_bucket_ms(),
                                .last_bucket_ms = t->last_bucket_ms(),
                                .bytes = t->bytes()});
        }
      }
      out->body = std::move(info);
      return Status::Ok();
    }
    case wire::ResponseBody::ScanResult: {
      const wire::ScanResult* r = in.body_as_ScanResult();
      out->body = proto::ScanResult{.cursor = r->cursor(),
                                    .keys = DecodeKeys(r->keys(), f)};
      return Status::Ok();
    }
    case wire::ResponseBody::DeleteResult: {
      proto::DeleteResult result;
      const auto* items = in.body_as_DeleteResult()->items();
      if (items != nullptr) {
        result.items.reserve(items->size());
        for (const wire::DeleteItemResult* d : *items) {
          result.items.push_back({.code = static_cast<Code>(d->code()),
                                  .message = f.Text(d->message()),
                                  .existed = d->existed()});
        }
      }
      out->body = std::move(result);
      return Status::Ok();
    }
    case wire::ResponseBody::InfoResult:
      out->body =
          proto::InfoResult{.text = f.Text(in.body_as_InfoResult()->text())};
      return Status::Ok();
    case wire::ResponseBody::AuthResult: {
      const wire::AuthResult* r = in.body_as_AuthResult();
      out->body = proto::AuthResult{.token_id = f.Text(r->token_id()),
                                    .role = f.Text(r->role())};
      return Status::Ok();
    }
    case wire::ResponseBody::AdminResult: {
      const wire::AdminReply* r = in.body_as_AdminResult()->reply();
      proto::AdminResult result;
      if (r != nullptr) result.reply = DecodeAdminReply(*r, f);
      out->body = std::move(result);
      return Status::Ok();
    }
  }
  return Status(
      Code::kProtocolError,
      "unknown response type " + std::to_string(static_cast<int>(type)) +
          " (this client knows 1.." +
          std::to_string(static_cast<int>(wire::ResponseBody::MAX)) + ")");
}

}  // namespace

std::vector<uint8_t> EncodeResponse(const proto::Response& response) {
  FlatBufferBuilder fbb(256);
  wire::ResponseBody type = wire::ResponseBody::NONE;
  Offset<void> body = std::visit(BodyEncoder{fbb, &type}, response.body);
  auto message = TextOf(fbb, response.message);
  wire::ResponseBuilder b(fbb);
  b.add_message(message);
  b.add_body(body);
  b.add_code(CodeOf(response.code));
  b.add_body_type(type);
  return codec_internal::FinishPadded(fbb, b.Finish());
}

Result<proto::Response> DecodeResponse(std::span<const uint8_t> body,
                                       size_t max_body) {
  std::vector<uint64_t> storage;
  codec_internal::CheckedBody checked =
      codec_internal::CheckBody(body, max_body, "response body", &storage);
  if (!checked.status.ok()) return checked.status;
  flatbuffers::Verifier verifier(checked.data, checked.size,
                                 codec_internal::VerifierOptions(checked.size));
  if (!verifier.VerifyBuffer<wire::Response>(nullptr)) {
    return Status(
        Code::kProtocolError,
        "response body is not a valid tally.wire.Response FlatBuffer");
  }
  const wire::Response* in = flatbuffers::GetRoot<wire::Response>(checked.data);
  // Decoded in place: moving a filled Response out trips a false GCC 12
  // -Wmaybe-uninitialized inside std::variant.
  Result<proto::Response> result{proto::Response{}};
  proto::Response& out = result.value();
  out.code = static_cast<Code>(in->code());
  FieldReader fields(codec_internal::DecodeBudget(checked.size));
  out.message = fields.Text(in->message());
  if (Status s = DecodeBody(*in, fields, &out); !s.ok()) return s;
  if (fields.exceeded()) {
    return codec_internal::BudgetExceeded("response", checked.size);
  }
  return result;
}

}  // namespace tally
