// PromWriter: writes the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), for the
// server's /metrics endpoint and the client library's metrics sink.
//
// It lives in protocol/ because both server/ and client/ render it and
// client/ may depend on protocol/ only (docs/design.md); it is a wire format
// like the frames, and knows no sockets.
//
// Hand-written (no C++ Prometheus library in Debian): tests/metrics_test
// parses its output with Debian's python3-prometheus-client, and
// protocol/prometheus_text_test.cc pins the escaping and number rules.
//
// Usage: Family() once per metric family, then its samples (or
// LabelledFamily(), a family and its samples in one call); the caller keeps
// a family's samples together and never repeats a family.
// Thread safety: none; one writer per rendering.

#ifndef TALLY_PROTOCOL_PROMETHEUS_TEXT_H_
#define TALLY_PROTOCOL_PROMETHEUS_TEXT_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace tally {

class PromWriter {
 public:
  using Label = std::pair<std::string_view, std::string_view>;
  using Labels = std::initializer_list<Label>;

  // One sample of a family with a single label: that label's value and the
  // sample's value.
  struct LabelledValue {
    std::string_view label_value;
    double value;
  };
  // A summary's quantile (0.5, 0.99, 1...) and its value.
  struct Quantile {
    double quantile;
    double value;
  };

  // "# HELP" and "# TYPE" lines. `type`: counter, gauge, histogram, summary,
  // untyped.
  void Family(std::string_view name, std::string_view help,
              std::string_view type);
  // A whole family whose samples differ in one label: Family(), then
  // `name`{`label`="label_value"} value for each of `samples`, in order.
  void LabelledFamily(std::string_view name, std::string_view help,
                      std::string_view type, std::string_view label,
                      std::span<const LabelledValue> samples);
  void LabelledFamily(std::string_view name, std::string_view help,
                      std::string_view type, std::string_view label,
                      std::initializer_list<LabelledValue> samples) {
    LabelledFamily(
        name, help, type, label,
        std::span<const LabelledValue>(samples.begin(), samples.size()));
  }
  void Sample(std::string_view name, Labels labels, double value);
  void Sample(std::string_view name, double value) { Sample(name, {}, value); }
  // A summary's samples: `name`{quantile=...} for each of `quantiles`, then
  // `name`_sum when `sum` is given and `name`_count.
  void Summary(std::string_view name, Labels labels,
               std::span<const Quantile> quantiles, std::optional<double> sum,
               uint64_t count);
  // A histogram's samples: `name`_bucket{le=...} for each upper bound (in
  // the metric's unit, e.g. seconds) with its cumulative count, then
  // le="+Inf" = count, `name`_sum and `name`_count.
  // REQUIRES: cumulative.size() == bounds.size().
  void Histogram(std::string_view name, Labels labels,
                 std::span<const double> bounds,
                 std::span<const uint64_t> cumulative, double sum,
                 uint64_t count);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

  // The format's number rules: integers without exponent or fraction when
  // exact, "+Inf", "-Inf", "NaN", otherwise the shortest round-trip form.
  static std::string FormatValue(double value);
  // Label values escape \, " and newline; HELP text escapes \ and newline.
  static std::string EscapeLabelValue(std::string_view value);
  static std::string EscapeHelp(std::string_view help);

 private:
  void WriteLabels(Labels labels, std::string_view extra_name = {},
                   std::string_view extra_value = {});
  // `name`{labels,extra_name="extra_value"} value: a sample line.
  void WriteSample(std::string_view name, Labels labels,
                   std::string_view extra_name, std::string_view extra_value,
                   double value);
  std::string out_;
};

}  // namespace tally

#endif  // TALLY_PROTOCOL_PROMETHEUS_TEXT_H_
