// Requests: proto::Request <-> tally.wire.Request, plus the checks shared with
// the response codec (codec_response.cc).

#include "protocol/codec.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include "protocol/codec_internal.h"
#include "tally_generated.h"

namespace tally {

namespace codec_internal {

CheckedBody CheckBody(std::span<const uint8_t> body, size_t max_body,
                      std::string_view what, std::vector<uint64_t>* storage) {
  CheckedBody out;
  if (body.empty()) {
    out.status = Status(Code::kProtocolError, std::string(what) + " is empty");
    return out;
  }
  if (body.size() > max_body) {
    out.status =
        Status(Code::kFrameTooLarge,
               std::string(what) + " of " + std::to_string(body.size()) +
                   " bytes exceeds the limit of " + std::to_string(max_body));
    return out;
  }
  out.data = body.data();
  out.size = body.size();
  // FlatBuffers reads scalars in place; give it an aligned copy if needed.
  if (reinterpret_cast<uintptr_t>(body.data()) % 8 != 0) {
    storage->resize((body.size() + 7) / 8);
    std::memcpy(storage->data(), body.data(), body.size());
    out.data = reinterpret_cast<const uint8_t*>(storage->data());
  }
  return out;
}

size_t DecodeBudget(size_t size) {
  return std::max(kMaxDecodedFieldBytes, size);
}

Status BudgetExceeded(std::string_view what, size_t size) {
  return Status(Code::kProtocolError,
                std::string(what) + " decodes to more than " +
                    std::to_string(DecodeBudget(size)) +
                    " bytes of fields (vectors reused across items?)");
}

flatbuffers::Verifier::Options VerifierOptions(size_t size) {
  flatbuffers::Verifier::Options options;
  options.max_depth = kVerifierMaxDepth;
  // Distinct tables sit at distinct offsets at least kMinTableBytes apart; more
  // visits than that means table offsets are reused to amplify the work.
  options.max_tables =
      static_cast<flatbuffers::uoffset_t>(size / kMinTableBytes + 1);
  options.check_alignment = true;
  options.check_nested_flatbuffers = true;
  return options;
}

}  // namespace codec_internal

namespace {

using codec_internal::BytesOf;
using codec_internal::FieldReader;
using codec_internal::TextOf;
using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;
using flatbuffers::Vector;

// ------------------------------------------------------------------ encode

Offset<wire::AddItem> EncodeAddItem(FlatBufferBuilder& fbb,
                                    const proto::AddItem& item) {
  auto key = BytesOf(fbb, item.key);
  Offset<Vector<uint8_t>> member = 0;
  if (item.member.has_value()) member = BytesOf(fbb, *item.member);
  Offset<Vector<uint8_t>> id = 0;
  if (item.id.has_value()) id = BytesOf(fbb, *item.id);
  wire::AddItemBuilder b(fbb);
  b.add_time_ms(item.time_ms);
  b.add_count(item.count);
  b.add_amount(item.amount);
  b.add_key(key);
  b.add_member(member);
  b.add_id(id);
  return b.Finish();
}

Offset<Vector<Offset<wire::AddItem>>> EncodeAddItems(
    FlatBufferBuilder& fbb, const std::vector<proto::AddItem>& items) {
  std::vector<Offset<wire::AddItem>> offsets;
  offsets.reserve(items.size());
  for (const proto::AddItem& item : items) {
    offsets.push_back(EncodeAddItem(fbb, item));
  }
  return fbb.CreateVector(offsets);
}

Offset<Vector<Offset<wire::QueryItem>>> EncodeQueryItems(
    FlatBufferBuilder& fbb, const std::vector<proto::QueryItem>& items) {
  std::vector<Offset<wire::QueryItem>> offsets;
  offsets.reserve(items.size());
  for (const proto::QueryItem& item : items) {
    auto key = BytesOf(fbb, item.key);
    wire::QueryItemBuilder b(fbb);
    b.add_last_ms(item.last_ms);
    b.add_at_ms(item.at_ms);
    b.add_from_ms(item.from_ms);
    b.add_to_ms(item.to_ms);
    b.add_key(key);
    b.add_aggs(item.aggs);
    offsets.push_back(b.Finish());
  }
  return fbb.CreateVector(offsets);
}

// Builds the union member for `body`; sets *type.
struct BodyEncoder {
  FlatBufferBuilder& fbb;
  wire::RequestBody* type;

  Offset<void> operator()(const std::monostate&) {
    *type = wire::RequestBody::NONE;
    return 0;
  }
  Offset<void> operator()(const proto::HelloRequest& r) {
    auto name = TextOf(fbb, r.client_name);
    wire::HelloRequestBuilder b(fbb);
    b.add_client_name(name);
    b.add_protocol_version(r.protocol_version);
    *type = wire::RequestBody::HelloRequest;
    return b.Finish().Union();
  }
  Offset<void> operator()(const proto::PingRequest&) {
    *type = wire::RequestBody::PingRequest;
    return wire::CreatePingRequest(fbb).Union();
  }
  Offset<void> operator()(const proto::AddRequest& r) {
    auto items = EncodeAddItems(fbb, r.items);
    *type = wire::RequestBody::AddRequest;
    return wire::CreateAddRequest(fbb, items).Union();
  }
  Offset<void> operator()(const proto::QueryRequest& r) {
    auto items = EncodeQueryItems(fbb, r.items);
    *type = wire::RequestBody::QueryRequest;
    return wire::CreateQueryRequest(fbb, items).Union();
  }
  Offset<void> operator()(const proto::AddAndQueryRequest& r) {
    auto adds = EncodeAddItems(fbb, r.adds);
    auto queries = EncodeQueryItems(fbb, r.queries);
    wire::AddAndQueryRequestBuilder b(fbb);
    b.add_adds(adds);
    b.add_queries(queries);
    *type = wire::RequestBody::AddAndQueryRequest;
    return b.Finish().Union();
  }
  Offset<void> operator()(const proto::RangeRequest& r) {
    auto key = BytesOf(fbb, r.key);
    wire::RangeRequestBuilder b(fbb);
    b.add_from_ms(r.from_ms);
    b.add_to_ms(r.to_ms);
    b.add_step_ms(r.step_ms);
    b.add_key(key);
    b.add_aggs(r.aggs);
    *type = wire::RequestBody::RangeRequest;
    return b.Finish().Union();
  }
  Offset<void> operator()(const proto::InspectRequest& r) {
    auto key = BytesOf(fbb, r.key);
    *type = wire::RequestBody::InspectRequest;
    return wire::CreateInspectRequest(fbb, key).Union();
  }
  Offset<void> operator()(const proto::ScanRequest& r) {
    Offset<Vector<uint8_t>> pattern = 0;
    if (!r.pattern.empty()) pattern = BytesOf(fbb, r.pattern);
    wire::ScanRequestBuilder b(fbb);
    b.add_cursor(r.cursor);
    b.add_pattern(pattern);
    b.add_count(r.count);
    *type = wire::RequestBody::ScanRequest;
    return b.Finish().Union();
  }
  Offset<void> operator()(const proto::DeleteRequest& r) {
    std::vector<Offset<wire::Bytes>> keys;
    keys.reserve(r.keys.size());
    for (const std::string& key : r.keys) {
      keys.push_back(wire::CreateBytes(fbb, BytesOf(fbb, key)));
    }
    auto vec = fbb.CreateVector(keys);
    *type = wire::RequestBody::DeleteRequest;
    return wire::CreateDeleteRequest(fbb, vec).Union();
  }
  Offset<void> operator()(const proto::InfoRequest& r) {
    auto section = TextOf(fbb, r.section);
    *type = wire::RequestBody::InfoRequest;
    return wire::CreateInfoRequest(fbb, section).Union();
  }
  Offset<void> operator()(const proto::AuthRequest& r) {
    auto token = TextOf(fbb, r.token);
    *type = wire::RequestBody::AuthRequest;
    return wire::CreateAuthRequest(fbb, token).Union();
  }
  Offset<void> operator()(const proto::AdminRequest& r) {
    std::vector<Offset<flatbuffers::String>> args;
    args.reserve(r.args.size());
    for (const std::string& arg : r.args) args.push_back(TextOf(fbb, arg));
    auto vec = fbb.CreateVector(args);
    *type = wire::RequestBody::AdminRequest;
    return wire::CreateAdminRequest(fbb, vec).Union();
  }
};

// ------------------------------------------------------------------ decode

proto::AddItem DecodeAddItem(const wire::AddItem& in, FieldReader& f) {
  proto::AddItem item;
  item.key = f.Bytes(in.key());
  item.time_ms = in.time_ms();
  item.count = in.count();
  item.amount = in.amount();
  if (in.member() != nullptr) item.member = f.Bytes(in.member());
  if (in.id() != nullptr) item.id = f.Bytes(in.id());
  return item;
}

std::vector<proto::AddItem> DecodeAddItems(
    const Vector<Offset<wire::AddItem>>* in, FieldReader& f) {
  std::vector<proto::AddItem> items;
  if (in == nullptr) return items;
  items.reserve(in->size());
  for (const wire::AddItem* item : *in) {
    items.push_back(DecodeAddItem(*item, f));
  }
  return items;
}

std::vector<proto::QueryItem> DecodeQueryItems(
    const Vector<Offset<wire::QueryItem>>* in, FieldReader& f) {
  std::vector<proto::QueryItem> items;
  if (in == nullptr) return items;
  items.reserve(in->size());
  for (const wire::QueryItem* q : *in) {
    items.push_back({.key = f.Bytes(q->key()),
                     .last_ms = q->last_ms(),
                     .at_ms = q->at_ms(),
                     .from_ms = q->from_ms(),
                     .to_ms = q->to_ms(),
                     .aggs = q->aggs()});
  }
  return items;
}

template <typename V>
size_t SizeOf(const V* v) {
  return v == nullptr ? 0 : v->size();
}

Status TooManyItems(std::string_view op, size_t n) {
  return Status(Code::kResourceExhausted,
                std::string(op) + " request has " + std::to_string(n) +
                    " items; the limit is " + std::to_string(kMaxBatchItems));
}

Status MissingBody(wire::RequestBody type) {
  return Status(Code::kProtocolError,
                "request of type " + std::to_string(static_cast<int>(type)) +
                    " has no body table");
}

// Decodes the verified body `in` into *out.
Status DecodeBody(const wire::Request& in, FieldReader& f,
                  proto::Request* out) {
  const wire::RequestBody type = in.body_type();
  if (type != wire::RequestBody::NONE && in.body() == nullptr) {
    return MissingBody(type);
  }
  switch (type) {
    case wire::RequestBody::NONE:
      return Status(Code::kProtocolError, "request has no operation");
    case wire::RequestBody::HelloRequest: {
      const wire::HelloRequest* r = in.body_as_HelloRequest();
      out->body =
          proto::HelloRequest{.client_name = f.Text(r->client_name()),
                              .protocol_version = r->protocol_version()};
      return Status::Ok();
    }
    case wire::RequestBody::PingRequest:
      out->body = proto::PingRequest{};
      return Status::Ok();
    case wire::RequestBody::AddRequest: {
      const wire::AddRequest* r = in.body_as_AddRequest();
      if (SizeOf(r->items()) > kMaxBatchItems) {
        return TooManyItems("add", SizeOf(r->items()));
      }
      out->body = proto::AddRequest{.items = DecodeAddItems(r->items(), f)};
      return Status::Ok();
    }
    case wire::RequestBody::QueryRequest: {
      const wire::QueryRequest* r = in.body_as_QueryRequest();
      if (SizeOf(r->items()) > kMaxBatchItems) {
        return TooManyItems("query", SizeOf(r->items()));
      }
      out->body = proto::QueryRequest{.items = DecodeQueryItems(r->items(), f)};
      return Status::Ok();
    }
    case wire::RequestBody::AddAndQueryRequest: {
      const wire::AddAndQueryRequest* r = in.body_as_AddAndQueryRequest();
      const size_t n = SizeOf(r->adds()) + SizeOf(r->queries());
      if (n > kMaxBatchItems) return TooManyItems("add_and_query", n);
      out->body = proto::AddAndQueryRequest{
          .adds = DecodeAddItems(r->adds(), f),
          .queries = DecodeQueryItems(r->queries(), f)};
      return Status::Ok();
    }
    case wire::RequestBody::RangeRequest: {
      const wire::RangeRequest* r = in.body_as_RangeRequest();
      out->body = proto::RangeRequest{.key = f.Bytes(r->key()),
                                      .from_ms = r->from_ms(),
                                      .to_ms = r->to_ms(),
                                      .step_ms = r->step_ms(),
                                      .aggs = r->aggs()};
      return Status::Ok();
    }
    case wire::RequestBody::InspectRequest:
      out->body = proto::InspectRequest{
          .key = f.Bytes(in.body_as_InspectRequest()->key())};
      return Status::Ok();
    case wire::RequestBody::ScanRequest: {
      const wire::ScanRequest* r = in.body_as_ScanRequest();
      out->body = proto::ScanRequest{.cursor = r->cursor(),
                                     .pattern = f.Bytes(r->pattern()),
                                     .count = r->count()};
      return Status::Ok();
    }
    case wire::RequestBody::DeleteRequest: {
      const auto* keys = in.body_as_DeleteRequest()->keys();
      if (SizeOf(keys) > kMaxBatchItems) {
        return TooManyItems("delete", SizeOf(keys));
      }
      proto::DeleteRequest d;
      if (keys != nullptr) {
        d.keys.reserve(keys->size());
        for (const wire::Bytes* key : *keys)
          d.keys.push_back(f.Bytes(key->data()));
      }
      out->body = std::move(d);
      return Status::Ok();
    }
    case wire::RequestBody::InfoRequest:
      out->body = proto::InfoRequest{
          .section = f.Text(in.body_as_InfoRequest()->section())};
      return Status::Ok();
    case wire::RequestBody::AuthRequest:
      out->body = proto::AuthRequest{
          .token = f.Text(in.body_as_AuthRequest()->token())};
      return Status::Ok();
    case wire::RequestBody::AdminRequest: {
      const auto* args = in.body_as_AdminRequest()->args();
      if (SizeOf(args) > kMaxAdminArgs) {
        return Status(Code::kInvalidArgument,
                      "admin command has " + std::to_string(SizeOf(args)) +
                          " arguments; at most " +
                          std::to_string(kMaxAdminArgs) + " are allowed");
      }
      proto::AdminRequest a;
      if (args != nullptr) {
        a.args.reserve(args->size());
        for (const flatbuffers::String* arg : *args) {
          a.args.push_back(f.Text(arg));
        }
      }
      out->body = std::move(a);
      return Status::Ok();
    }
  }
  return Status(
      Code::kProtocolError,
      "unknown request type " + std::to_string(static_cast<int>(type)) +
          " (this server knows 1.." +
          std::to_string(static_cast<int>(wire::RequestBody::MAX)) + ")");
}

}  // namespace

std::vector<uint8_t> EncodeRequest(const proto::Request& request) {
  FlatBufferBuilder fbb(256);
  wire::RequestBody type = wire::RequestBody::NONE;
  Offset<void> body = std::visit(BodyEncoder{fbb, &type}, request.body);
  wire::RequestBuilder b(fbb);
  b.add_deadline_ms(request.deadline_ms);
  b.add_body(body);
  b.add_body_type(type);
  b.add_wait_durable(request.wait_durable);
  return codec_internal::FinishPadded(fbb, b.Finish());
}

Result<proto::Request> DecodeRequest(std::span<const uint8_t> body,
                                     size_t max_body) {
  std::vector<uint64_t> storage;
  codec_internal::CheckedBody checked =
      codec_internal::CheckBody(body, max_body, "request body", &storage);
  if (!checked.status.ok()) return checked.status;
  flatbuffers::Verifier verifier(checked.data, checked.size,
                                 codec_internal::VerifierOptions(checked.size));
  if (!verifier.VerifyBuffer<wire::Request>(nullptr)) {
    return Status(Code::kProtocolError,
                  "request body is not a valid tally.wire.Request FlatBuffer");
  }
  const wire::Request* in = flatbuffers::GetRoot<wire::Request>(checked.data);
  proto::Request out;
  out.deadline_ms = in->deadline_ms();
  out.wait_durable = in->wait_durable();
  FieldReader fields(codec_internal::DecodeBudget(checked.size));
  if (Status s = DecodeBody(*in, fields, &out); !s.ok()) return s;
  if (fields.exceeded()) {
    return codec_internal::BudgetExceeded("request", checked.size);
  }
  return out;
}

}  // namespace tally
