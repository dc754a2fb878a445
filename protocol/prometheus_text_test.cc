#include "protocol/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <vector>

namespace tally {
namespace {

TEST(PromWriterTest, FamilyWritesHelpAndType) {
  PromWriter w;
  w.Family("tally_keys", "Keys held.\nSecond line \\ end", "gauge");
  EXPECT_EQ(w.text(),
            "# HELP tally_keys Keys held.\\nSecond line \\\\ end\n"
            "# TYPE tally_keys gauge\n");
}

TEST(PromWriterTest, LabelValuesAreEscaped) {
  PromWriter w;
  w.Sample("m", {{"a", "x\"y"}, {"b", "back\\slash\nnl"}}, 1);
  EXPECT_EQ(w.text(), "m{a=\"x\\\"y\",b=\"back\\\\slash\\nnl\"} 1\n");
}

TEST(PromWriterTest, NumbersFollowTheFormat) {
  EXPECT_EQ(PromWriter::FormatValue(0), "0");
  EXPECT_EQ(PromWriter::FormatValue(12345678901234.0), "12345678901234");
  EXPECT_EQ(PromWriter::FormatValue(-3), "-3");
  EXPECT_EQ(PromWriter::FormatValue(0.25), "0.25");
  EXPECT_EQ(PromWriter::FormatValue(1e-05), "1e-05");  // as Python's repr
  EXPECT_EQ(PromWriter::FormatValue(0.0001), "0.0001");
  EXPECT_EQ(PromWriter::FormatValue(2.5e-05), "2.5e-05");
  EXPECT_EQ(PromWriter::FormatValue(1.5e20), "1.5e+20");
  EXPECT_EQ(PromWriter::FormatValue(std::numeric_limits<double>::infinity()),
            "+Inf");
  EXPECT_EQ(PromWriter::FormatValue(-std::numeric_limits<double>::infinity()),
            "-Inf");
  EXPECT_EQ(PromWriter::FormatValue(std::nan("")), "NaN");
  // Shortest form that reads back as the same double.
  EXPECT_EQ(std::stod(PromWriter::FormatValue(0.1 + 0.2)), 0.1 + 0.2);
}

TEST(PromWriterTest, SampleWithoutLabelsHasNoBraces) {
  PromWriter w;
  w.Sample("process_open_fds", 7);
  EXPECT_EQ(w.text(), "process_open_fds 7\n");
}

TEST(PromWriterTest, HistogramWritesCumulativeBucketsSumAndCount) {
  PromWriter w;
  const std::vector<double> bounds = {0.001, 0.5};
  const std::vector<uint64_t> cumulative = {2, 3};
  w.Histogram("d_seconds", {{"cmd", "add"}}, bounds, cumulative, 1.25, 4);
  EXPECT_EQ(w.text(),
            "d_seconds_bucket{cmd=\"add\",le=\"0.001\"} 2\n"
            "d_seconds_bucket{cmd=\"add\",le=\"0.5\"} 3\n"
            "d_seconds_bucket{cmd=\"add\",le=\"+Inf\"} 4\n"
            "d_seconds_sum{cmd=\"add\"} 1.25\n"
            "d_seconds_count{cmd=\"add\"} 4\n");
}

TEST(PromWriterTest, LabelledFamilyWritesOneSamplePerLabelValueInOrder) {
  PromWriter w;
  w.LabelledFamily("r_total", "Refused.", "counter", "reason",
                   {{"busy", 2}, {"a\"b", 0.5}});
  EXPECT_EQ(w.text(),
            "# HELP r_total Refused.\n"
            "# TYPE r_total counter\n"
            "r_total{reason=\"busy\"} 2\n"
            "r_total{reason=\"a\\\"b\"} 0.5\n");
  PromWriter empty;
  empty.LabelledFamily("k", "Keys.", "gauge", "type",
                       std::span<const PromWriter::LabelledValue>());
  EXPECT_EQ(empty.text(), "# HELP k Keys.\n# TYPE k gauge\n");
}

TEST(PromWriterTest, SummaryWritesQuantilesThenSumAndCount) {
  const std::vector<PromWriter::Quantile> quantiles = {
      {0.5, 0.25}, {0.99, 1.5}, {1, 2}};
  PromWriter w;
  w.Summary("s_seconds", {{"op", "sync"}}, quantiles, 3.75, 7);
  EXPECT_EQ(w.text(),
            "s_seconds{op=\"sync\",quantile=\"0.5\"} 0.25\n"
            "s_seconds{op=\"sync\",quantile=\"0.99\"} 1.5\n"
            "s_seconds{op=\"sync\",quantile=\"1\"} 2\n"
            "s_seconds_sum{op=\"sync\"} 3.75\n"
            "s_seconds_count{op=\"sync\"} 7\n");
  // Without a sum (the data has none): quantiles and the count only.
  PromWriter no_sum;
  no_sum.Summary("s_seconds", {}, quantiles, std::nullopt, 7);
  EXPECT_EQ(no_sum.text(),
            "s_seconds{quantile=\"0.5\"} 0.25\n"
            "s_seconds{quantile=\"0.99\"} 1.5\n"
            "s_seconds{quantile=\"1\"} 2\n"
            "s_seconds_count 7\n");
}

}  // namespace
}  // namespace tally
