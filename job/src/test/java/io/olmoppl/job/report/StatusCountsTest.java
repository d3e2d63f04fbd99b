package io.olmoppl.job.report;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.olmoppl.job.testing.SparkTestBase;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;

/**
 * The summary's documents per status come from the totals' one job; rows whose status is not one of
 * this version's (carried from another version's output, or null) are counted by a group-by
 * instead, so that no row goes uncounted. Expected maps are written out by hand.
 */
class StatusCountsTest extends SparkTestBase {
  private static Dataset<Row> rows(String... statuses) {
    StringBuilder values = new StringBuilder();
    for (String s : statuses) {
      values
          .append(values.length() == 0 ? "" : ", ")
          .append("('a b', ")
          .append(s == null ? "null" : "'" + s + "'")
          .append(", 3, 1.5D, 1)");
    }
    return spark.sql(
        "SELECT * FROM VALUES "
            + values
            + " AS t(text, ppl_status, ppl_tokens, ppl_nll, ppl_windows)");
  }

  private static Map<String, Long> counts(Dataset<Row> d) {
    Row totals = Summary.totals(d, "text");
    return Summary.statusCounts(d, totals, Summary.STATUS_FROM, totals.getLong(0));
  }

  @Test
  void statusesOfThisVersionInOneJob() {
    Map<String, Long> want = new LinkedHashMap<>();
    want.put("empty", 1L);
    want.put("malformed", 1L);
    want.put("ok", 3L);
    Dataset<Row> d = rows("ok", "empty", "ok", "malformed", "ok");
    assertEquals(want, counts(d));
    assertEquals(List.copyOf(want.keySet()), List.copyOf(counts(d).keySet()), "by status");
    assertEquals(want, Summary.statusCounts(d));
  }

  @Test
  void otherStatusesAndNullAreCountedToo() {
    Map<String, Long> want = new LinkedHashMap<>();
    want.put(null, 1L);
    want.put("ok", 2L);
    want.put("retired_status", 1L);
    Dataset<Row> d = rows("ok", "retired_status", null, "ok");
    assertEquals(want, counts(d));
  }
}
