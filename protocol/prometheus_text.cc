#include "protocol/prometheus_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>

namespace tally {

std::string PromWriter::FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Counters are integers: print them exactly, without an exponent, up to
  // 2^53 (beyond, a double is no longer exact anyway).
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return std::to_string(static_cast<int64_t>(value));
  }
  // Python's repr and Go's FormatFloat('g', -1) (what the official clients
  // print): the shortest round-trip digits, positional for exponents in
  // [-4, 16), scientific otherwise ("0.0001", "1e-05").
  char buffer[64];
  std::to_chars_result r = std::to_chars(buffer, buffer + sizeof(buffer), value,
                                         std::chars_format::scientific);
  if (r.ec != std::errc()) return "NaN";
  const std::string scientific(buffer, r.ptr);
  const int exponent = std::stoi(scientific.substr(scientific.find('e') + 1));
  if (exponent < -4 || exponent >= 16) return scientific;
  r = std::to_chars(buffer, buffer + sizeof(buffer), value,
                    std::chars_format::fixed);
  return std::string(buffer, r.ec == std::errc() ? r.ptr : buffer);
}

std::string PromWriter::EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string PromWriter::EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void PromWriter::Family(std::string_view name, std::string_view help,
                        std::string_view type) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += EscapeHelp(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PromWriter::WriteLabels(Labels labels, std::string_view extra_name,
                             std::string_view extra_value) {
  if (labels.size() == 0 && extra_name.empty()) return;
  out_ += '{';
  bool first = true;
  auto one = [&](std::string_view name, std::string_view value) {
    if (!first) out_ += ',';
    first = false;
    out_ += name;
    out_ += "=\"";
    out_ += EscapeLabelValue(value);
    out_ += '"';
  };
  for (const Label& label : labels) one(label.first, label.second);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out_ += '}';
}

void PromWriter::LabelledFamily(std::string_view name, std::string_view help,
                                std::string_view type, std::string_view label,
                                std::span<const LabelledValue> samples) {
  Family(name, help, type);
  for (const LabelledValue& s : samples) {
    Sample(name, {{label, s.label_value}}, s.value);
  }
}

void PromWriter::WriteSample(std::string_view name, Labels labels,
                             std::string_view extra_name,
                             std::string_view extra_value, double value) {
  out_ += name;
  WriteLabels(labels, extra_name, extra_value);
  out_ += ' ';
  out_ += FormatValue(value);
  out_ += '\n';
}

void PromWriter::Sample(std::string_view name, Labels labels, double value) {
  WriteSample(name, labels, {}, {}, value);
}

void PromWriter::Histogram(std::string_view name, Labels labels,
                           std::span<const double> bounds,
                           std::span<const uint64_t> cumulative, double sum,
                           uint64_t count) {
  const std::string bucket = std::string(name) + "_bucket";
  for (size_t i = 0; i < bounds.size() && i < cumulative.size(); ++i) {
    WriteSample(bucket, labels, "le", FormatValue(bounds[i]),
                static_cast<double>(cumulative[i]));
  }
  WriteSample(bucket, labels, "le", "+Inf", static_cast<double>(count));
  Sample(std::string(name) + "_sum", labels, sum);
  Sample(std::string(name) + "_count", labels, static_cast<double>(count));
}

void PromWriter::Summary(std::string_view name, Labels labels,
                         std::span<const Quantile> quantiles,
                         std::optional<double> sum, uint64_t count) {
  for (const Quantile& q : quantiles) {
    WriteSample(name, labels, "quantile", FormatValue(q.quantile), q.value);
  }
  if (sum) Sample(std::string(name) + "_sum", labels, *sum);
  Sample(std::string(name) + "_count", labels, static_cast<double>(count));
}

}  // namespace tally
