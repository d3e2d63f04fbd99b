package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import io.olmoppl.job.testing.SparkTestBase;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every input column reaches the output unchanged, or the run is refused before scoring. */
class InputColumnsTest extends SparkTestBase {
  @TempDir Path tmp;

  @Test
  void anInputColumnNamedLikeAnOutputColumnIsRefused() throws Exception {
    Path in = tmp.resolve("in.jsonl");
    Files.writeString(
        in,
        "{\"text\":\"one\",\"PPL_Bucket\":\"mine\"}\n{\"text\":\"two\",\"PPL_Bucket\":\"m\"}\n");
    Path out = tmp.resolve("out");
    Cli r = scoreCli(model(), in, out, "--buckets", "low:50,high");
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("'PPL_Bucket'") && r.err().contains("ppl_bucket"), r.err());
    assertFalse(Files.exists(out));
    // without --buckets nothing is written under that name: the column is kept
    Cli kept = scoreCli(model(), in, out, "--output-format", "json");
    assertEquals(0, kept.code(), kept.err());
    Map<String, String> b = new TreeMap<>();
    for (JsonObject row : readJsonLines(out)) {
      b.put(row.get("text").getAsString(), row.get("PPL_Bucket").getAsString());
    }
    assertEquals(Map.of("one", "mine", "two", "m"), b);
  }

  @Test
  void aJsonFieldNamedLikeSparksBadRecordColumnIsKept() throws Exception {
    Path in = tmp.resolve("in.jsonl");
    Files.writeString(
        in,
        "{\"text\":\"a good line\",\"_corrupt_record\":\"my own field\"}\n"
            + "{\"text\": not json\n");
    Path out = tmp.resolve("out");
    Cli r = scoreCli(model(), in, out, "--output-format", "json");
    assertEquals(0, r.code(), r.err());
    List<JsonObject> rows = readJsonLines(out);
    assertEquals(2, rows.size());
    for (JsonObject row : rows) {
      if (row.get("ppl_status").getAsString().equals("ok")) {
        assertEquals("a good line", row.get("text").getAsString());
        assertEquals("my own field", row.get("_corrupt_record").getAsString());
        assertTrue(row.get("ppl_malformed_line").isJsonNull());
      } else {
        assertEquals("malformed", row.get("ppl_status").getAsString());
        assertEquals("{\"text\": not json", row.get("ppl_malformed_line").getAsString());
        assertTrue(row.get("_corrupt_record").isJsonNull());
      }
    }
  }

  @Test
  void csvOutputKeepsLeadingAndTrailingWhitespace() throws Exception {
    String[] texts = {"  two leading spaces", "trailing tab\t", " both ", "plain"};
    StringBuilder b = new StringBuilder();
    for (String t : texts) {
      JsonObject o = new JsonObject();
      o.addProperty("text", t);
      b.append(o).append('\n');
    }
    Path in = Files.writeString(tmp.resolve("in.jsonl"), b.toString());
    Path out = tmp.resolve("out");
    Cli r = scoreCli(model(), in, out, "--output-format", "csv");
    assertEquals(0, r.code(), r.err());
    // read back with Spark's CSV defaults for reading (no trimming)
    List<String> back =
        spark
            .read()
            .option("header", "true")
            .option("multiLine", "true")
            .option("escape", "\"")
            .csv(out.toString())
            .select("text")
            .collectAsList()
            .stream()
            .map(row -> row.getString(0))
            .sorted()
            .toList();
    assertEquals(java.util.Arrays.stream(texts).sorted().toList(), back);
    // the scores were of the untrimmed text: a re-run from this output carries every row
    Path out2 = tmp.resolve("out2");
    Cli again = scoreCli(model(), in, out2, "--previous", out.toString());
    assertEquals(0, again.code(), again.err());
    assertEquals(
        texts.length, summary(out2).getAsJsonObject("previous").get("carried").getAsLong());
  }
}
