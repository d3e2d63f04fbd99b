package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.testing.Refcases;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Scores-only output ({@code --output-columns}): the key and the score columns only, joined back to
 * the documents by id as the README shows; usable as {@code --previous} and with {@code --cutoffs};
 * a list that would lose the key fails before any work.
 */
class OutputColumnsTest extends SparkTestBase {
  static final String MODEL = Refcases.dir("p04_olmo_untied_gqa_f16").toString();
  @TempDir static Path tmp;
  static Path input;
  static Path scores;
  static List<String> texts = new ArrayList<>();
  static Cli first;

  @BeforeAll
  static void scoreOnce() throws Exception {
    String[] words = "the of and to in a is that for it as was with be by on".split(" ");
    java.util.Random rnd = new java.util.Random(3);
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      StringBuilder t = new StringBuilder();
      for (int w = 0, n = 3 + rnd.nextInt(20); w < n; w++) {
        t.append(w == 0 ? "" : " ").append(words[rnd.nextInt(words.length)]);
      }
      texts.add(t.toString());
      lines.add(line(i, t.toString()));
    }
    input = tmp.resolve("docs.jsonl");
    Files.write(input, lines);
    scores = tmp.resolve("scores");
    first =
        scoreCli(
            MODEL,
            input,
            scores,
            "--output-format",
            "json",
            "--output-columns",
            "id,ppl_*",
            "--buckets",
            "head:50,tail",
            "--progress",
            "off");
    assertEquals(0, first.code(), first.err());
  }

  static String line(int id, String text) {
    return "{\"id\": " + id + ", \"source\": \"s" + (id % 2) + "\", \"text\": \"" + text + "\"}";
  }

  static String sha256(String s) throws Exception {
    return HexFormat.of()
        .formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void writesTheKeyTheScoresAndTheTextHashOnly() throws Exception {
    List<JsonObject> rows = readJsonLines(scores);
    assertEquals(texts.size(), rows.size());
    for (JsonObject r : rows) {
      assertEquals(
          List.of(
              "id",
              "ppl_tokens",
              "ppl_nll",
              "perplexity",
              "bits_per_byte",
              "ppl_windows",
              "ppl_status",
              "ppl_model",
              "ppl_bucket",
              OutputColumns.TEXT_HASH),
          new ArrayList<>(r.keySet()));
      String text = texts.get(r.get("id").getAsInt());
      assertEquals(sha256(text), r.get(OutputColumns.TEXT_HASH).getAsString());
    }
    // the summary and the report still describe the documents (they read the text)
    JsonObject s = summary(scores);
    assertEquals(texts.size(), s.get("documents").getAsLong());
    assertTrue(s.getAsJsonObject("examples").getAsJsonArray("lowest").size() > 0);
  }

  @Test
  void joinsBackToTheDocumentsById() throws Exception {
    // the README's join: every document once, with its own scores
    spark.read().json(input.toString()).createOrReplaceTempView("docs");
    spark.read().json(scores.toString()).createOrReplaceTempView("scores");
    List<Row> joined =
        spark
            .sql(
                "SELECT d.id, d.text, s.perplexity, s.ppl_status, s.ppl_text_sha256"
                    + " FROM docs d JOIN scores s ON d.id = s.id ORDER BY d.id")
            .collectAsList();
    assertEquals(texts.size(), joined.size());
    for (int i = 0; i < joined.size(); i++) {
      Row r = joined.get(i);
      assertEquals(i, r.getLong(0));
      assertEquals(texts.get(i), r.getString(1));
      assertEquals(sha256(r.getString(1)), r.getString(4), "the row joined to its own document");
      assertEquals("ok", r.getString(3));
      assertTrue(r.getDouble(2) > 1);
    }
  }

  @Test
  void servesAsPreviousAndTakesCutoffs() throws Exception {
    Map<Integer, JsonObject> before = new HashMap<>();
    readJsonLines(scores).forEach(r -> before.put(r.get("id").getAsInt(), r));
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < texts.size(); i++) {
      lines.add(line(i, i == 4 ? texts.get(i) + " and more" : texts.get(i))); // row 4 is edited
    }
    lines.add(line(99, "a new document of the same words"));
    Path in2 = tmp.resolve("docs2.jsonl");
    Files.write(in2, lines);
    Path out2 = tmp.resolve("scores2");
    Cli r =
        scoreCli(
            MODEL,
            in2,
            out2,
            "--output-format",
            "json",
            "--output-columns",
            "scores",
            "--id-column",
            "id",
            "--previous",
            scores.toString(),
            "--cutoffs",
            scores.resolve("_summary.json").toString(),
            "--progress",
            "off");
    assertEquals(0, r.code(), r.err());
    JsonObject prev = summary(out2).getAsJsonObject("previous");
    assertEquals(texts.size() - 1, prev.get("carried").getAsLong(), "unchanged rows are carried");
    assertEquals(2, prev.get("scored").getAsLong(), "the edited and the new row are scored");
    List<JsonObject> rows = readJsonLines(out2);
    assertEquals(texts.size() + 1, rows.size());
    for (JsonObject row : rows) {
      assertFalse(row.has("text") || row.has("source"));
      int id = row.get("id").getAsInt();
      if (id != 4 && id != 99) {
        JsonObject b = before.get(id);
        assertEquals(b.get("ppl_nll").getAsDouble(), row.get("ppl_nll").getAsDouble(), 0.0);
        assertEquals(b.get("ppl_bucket").getAsString(), row.get("ppl_bucket").getAsString());
      }
    }
    assertEquals(
        sha256(texts.get(4) + " and more"),
        rows.stream()
            .filter(x -> x.get("id").getAsInt() == 4)
            .findFirst()
            .orElseThrow()
            .get(OutputColumns.TEXT_HASH)
            .getAsString());
  }

  @Test
  void aListWithoutAKeyFailsBeforeAnyWork() {
    Path o = tmp.resolve("never");
    String[] base = {
      "score", "--model", MODEL, "--input", input.toString(), "--output", o.toString()
    };
    Cli noId = cli(concat(base, "--output-columns", "scores"));
    assertEquals(2, noId.code());
    assertTrue(noId.err().contains("--id-column"), noId.err());
    Cli unknown = cli(concat(base, "--output-columns", "id,nope"));
    assertEquals(1, unknown.code());
    assertTrue(
        unknown.err().contains("'nope' names no column") && unknown.err().contains("source"),
        unknown.err());
    Cli scoresOnly = cli(concat(base, "--output-columns", "ppl_*"));
    assertEquals(1, scoresOnly.code());
    assertTrue(scoresOnly.err().contains("keeps no input column"), scoresOnly.err());
    assertFalse(Files.exists(o), "nothing is written");
  }

  static String[] concat(String[] a, String... b) {
    String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }
}
