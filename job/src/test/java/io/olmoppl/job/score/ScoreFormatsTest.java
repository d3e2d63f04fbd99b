package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import io.olmoppl.job.report.ScoreSummary;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.testing.Refcases;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every input and output format keeps every row and every input column, with the same scores as
 * JSON lines; null and empty texts come out with a status.
 */
class ScoreFormatsTest extends SparkTestBase {
  static final String MODEL = Refcases.dir("p04_olmo_untied_gqa_f16").toString();
  static final List<String> TEXTS =
      List.of(
          "Hello world, this is a test.",
          "",
          "line one\nline two, \"quoted\"",
          "x",
          "生活的真谛是",
          "Several words\tseparated  by\u00a0odd spacing here.");
  @TempDir static Path tmp;
  static Map<String, JsonObject> baseline;

  static Dataset<Row> docs() {
    StructType schema =
        new StructType()
            .add("id", DataTypes.IntegerType)
            .add("text", DataTypes.StringType)
            .add("lang", DataTypes.StringType);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < TEXTS.size(); i++) {
      rows.add(RowFactory.create(i, TEXTS.get(i), "l" + i));
    }
    rows.add(RowFactory.create(TEXTS.size(), null, "null"));
    return spark.createDataFrame(rows, schema);
  }

  @BeforeAll
  static void baseline() throws Exception {
    Path in = tmp.resolve("base-in");
    docs().coalesce(1).write().json(in.toString());
    Path out = tmp.resolve("base-out");
    ScoreSummary summary =
        score(
            "--model",
            MODEL,
            "--input",
            in.toString(),
            "--output",
            out.toString(),
            "--output-format",
            "json");
    // local[...]: tasks run in the driver's JVM, so auto reads the files instead of broadcasting
    // within one process
    assertEquals("files", summary.corpus().distribution());
    assertEquals(0L, summary.corpus().broadcastBytes());
    baseline = byId(readJsonLines(out));
    assertEquals(TEXTS.size() + 1, baseline.size());
  }

  static Map<String, JsonObject> byId(List<JsonObject> rows) {
    Map<String, JsonObject> m = new HashMap<>();
    rows.forEach(r -> m.put(r.get("id").getAsString(), r));
    return m;
  }

  @Test
  void jsonStatusesForNullEmptyAndShortTexts() {
    assertEquals(
        "null_text", baseline.get(String.valueOf(TEXTS.size())).get("ppl_status").getAsString());
    assertTrue(baseline.get(String.valueOf(TEXTS.size())).get("text").isJsonNull());
    assertTrue(
        baseline.get(String.valueOf(TEXTS.size())).get("perplexity").isJsonNull(),
        "null fields written");
    assertEquals("empty", baseline.get("1").get("ppl_status").getAsString());
    assertEquals(0, baseline.get("1").get("ppl_tokens").getAsInt());
    assertEquals("ok", baseline.get("0").get("ppl_status").getAsString());
    assertEquals("l0", baseline.get("0").get("lang").getAsString(), "input columns kept");
  }

  @ParameterizedTest
  @ValueSource(strings = {"parquet", "orc", "csv", "json"})
  void inputFormatsGiveTheSameScores(String fmt) throws Exception {
    Path in = tmp.resolve("in-" + fmt);
    var w = docs().coalesce(1).write();
    switch (fmt) {
      case "parquet" -> w.parquet(in.toString());
      case "orc" -> w.orc(in.toString());
      case "csv" -> w.option("header", "true").option("escape", "\"").csv(in.toString());
      default -> w.json(in.toString());
    }
    Path out = tmp.resolve("out-" + fmt);
    // auto detection by the part files' extension
    ScoreSummary summary =
        score(
            "--model",
            MODEL,
            "--input",
            in.toString(),
            "--output",
            out.toString(),
            "--output-format",
            "json");
    Map<String, JsonObject> got = byId(readJsonLines(out));
    assertEquals(baseline.size(), got.size(), fmt + ": row count out = row count in");
    assertEquals((long) baseline.size(), summary.corpus().documents());
    for (var e : baseline.entrySet()) {
      JsonObject g = got.get(e.getKey());
      JsonObject b = e.getValue();
      String status = b.get("ppl_status").getAsString();
      if (fmt.equals("csv") && status.equals("empty")) {
        // CSV cannot tell an empty string from a missing value without quoting rules of the writer
        assertTrue(List.of("empty", "null_text").contains(g.get("ppl_status").getAsString()));
        continue;
      }
      assertEquals(status, g.get("ppl_status").getAsString(), fmt + " id " + e.getKey());
      assertEquals(
          b.get("ppl_tokens").getAsInt(),
          g.get("ppl_tokens").getAsInt(),
          fmt + " id " + e.getKey());
      // float32 sums may round differently when a document shares a batch with other documents
      double nll = b.get("ppl_nll").getAsDouble();
      assertEquals(
          nll,
          g.get("ppl_nll").getAsDouble(),
          Refcases.BATCH_REL_NLL * Math.max(1, nll),
          fmt + " id " + e.getKey());
    }
  }

  @Test
  void textInputIsOneDocumentPerLine() throws Exception {
    Path in = tmp.resolve("docs.txt");
    Files.writeString(in, "first document\nsecond document here\n\nfourth\n");
    Path out = tmp.resolve("out-text");
    score(
        "--model",
        MODEL,
        "--input",
        in.toString(),
        "--output",
        out.toString(),
        "--output-format",
        "json",
        "--text-column",
        "body");
    List<JsonObject> rows = readJsonLines(out);
    assertEquals(4, rows.size());
    assertTrue(
        rows.stream().anyMatch(r -> r.get("body").getAsString().equals("second document here")));
    assertEquals(
        1, rows.stream().filter(r -> r.get("ppl_status").getAsString().equals("empty")).count());
  }

  @Test
  void parquetAndCsvOutputs() throws Exception {
    Path in = tmp.resolve("in-out-formats.jsonl");
    Files.writeString(in, "{\"id\":1,\"text\":\"alpha beta gamma\"}\n{\"id\":2,\"text\":null}\n");
    Path pq = tmp.resolve("o-parquet");
    score(
        "--model", MODEL, "--input", in.toString(), "--output", pq.toString(), "--token-logprobs");
    List<Row> rows = spark.read().parquet(pq.toString()).orderBy("id").collectAsList();
    assertEquals(2, rows.size());
    Row r = rows.get(0);
    assertEquals(
        r.getInt(r.fieldIndex("ppl_tokens")), r.getList(r.fieldIndex("ppl_token_logprobs")).size());
    assertNull(rows.get(1).get(rows.get(1).fieldIndex("perplexity")));
    Path csv = tmp.resolve("o-csv");
    score(
        "--model",
        MODEL,
        "--input",
        in.toString(),
        "--output",
        csv.toString(),
        "--output-format",
        "csv",
        "--token-logprobs");
    List<Row> c =
        spark.read().option("header", "true").csv(csv.toString()).orderBy("id").collectAsList();
    assertEquals(2, c.size());
    String arr = c.get(0).getString(c.get(0).fieldIndex("ppl_token_logprobs"));
    assertTrue(arr.startsWith("[") && arr.endsWith("]"), "arrays as JSON strings in CSV: " + arr);
    assertEquals(
        r.getDouble(r.fieldIndex("ppl_nll")),
        Double.parseDouble(c.get(0).getString(c.get(0).fieldIndex("ppl_nll"))),
        1e-12);
  }
}
