package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import io.olmoppl.job.testing.SparkTestBase;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Scheduled re-runs ({@code --previous}): unchanged rows are carried over, new and edited ones
 * scored; the model stamp a row is keyed on changes with everything that changes the numbers.
 */
class RerunTest extends SparkTestBase {
  @TempDir Path tmp;

  @Test
  void stampChangesWithEverythingThatChangesTheNumbers() throws Exception {
    Path ckpt = tmp.resolve("conflict");
    assertEquals(
        0, makeTinyCheckpoint("olmo", ckpt, "--tied", "--output-copy", "different").code());
    Path in = jsonl(tmp.resolve("in.jsonl"), "{\"text\":\"the same words every time\"}");
    Map<String, String> stamps = new HashMap<>();
    Map<String, Double> nll = new HashMap<>();
    String[][] variants = {
      {"--tying", "config"},
      {"--tying", "checkpoint"},
      {"--tying", "config", "--window", "4"},
      {"--tying", "config", "--window", "4", "--stride", "2"},
      {"--tying", "config", "--bos", "none"},
      {"--tying", "config", "--batch-tokens", "7"}
    };
    for (int i = 0; i < variants.length; i++) {
      Path out = tmp.resolve("out" + i);
      List<String> a =
          new ArrayList<>(
              List.of(
                  "score",
                  "--model",
                  ckpt.toString(),
                  "--input",
                  in.toString(),
                  "--output",
                  out.toString(),
                  "--output-format",
                  "json"));
      a.addAll(List.of(variants[i]));
      Cli r = cli(a.toArray(String[]::new));
      assertEquals(0, r.code(), r.err());
      JsonObject row = readJsonLines(out).get(0);
      stamps.put(String.join(" ", variants[i]), row.get("ppl_model").getAsString());
      nll.put(String.join(" ", variants[i]), row.get("ppl_nll").getAsDouble());
    }
    assertNotEquals(
        nll.get("--tying config"),
        nll.get("--tying checkpoint"),
        "the two rules give other numbers");
    // every setting that changes the numbers changes the stamp; the batch size changes neither
    assertEquals(5, new java.util.HashSet<>(stamps.values()).size(), stamps.toString());
    assertEquals(stamps.get("--tying config"), stamps.get("--tying config --batch-tokens 7"));
    assertTrue(
        stamps
            .get("--tying config")
            .startsWith(
                summary(tmp.resolve("out0"))
                    .getAsJsonObject("model")
                    .get("fingerprint")
                    .getAsString()),
        "the stamp starts with the checkpoint fingerprint");
  }

  @Test
  void rerunCarriesUnchangedRowsAndScoresNewAndEditedOnes() throws Exception {
    Path in1 =
        jsonl(
            tmp.resolve("in1.jsonl"),
            "{\"id\":1,\"text\":\"kept the same\"}",
            "{\"id\":2,\"text\":\"will be edited\"}",
            "{\"id\":3,\"text\":\"will be removed\"}");
    Path out1 = tmp.resolve("out1");
    assertEquals(0, scoreCli(model(), in1, out1, "--output-format", "json").code());
    // mark the carried row's earlier score: a carried row keeps it, a re-scored row would not
    Path part =
        Files.list(out1)
            .filter(
                p ->
                    p.getFileName().toString().startsWith("part-")
                        && p.toString().endsWith(".json"))
            .filter(
                p -> {
                  try {
                    return Files.readString(p).contains("kept the same");
                  } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                  }
                })
            .findFirst()
            .orElseThrow();
    String body = Files.readString(part);
    JsonObject kept = byText(out1).get("kept the same");
    Files.writeString(
        part,
        body.replace("\"ppl_nll\":" + kept.get("ppl_nll").getAsString(), "\"ppl_nll\":12345.5"));
    Files.deleteIfExists(part.resolveSibling("." + part.getFileName() + ".crc"));

    Path in2 =
        jsonl(
            tmp.resolve("in2.jsonl"),
            "{\"id\":1,\"text\":\"kept the same\"}",
            "{\"id\":2,\"text\":\"was edited\"}",
            "{\"id\":4,\"text\":\"is new\"}");
    Path out2 = tmp.resolve("out2");
    Cli r = scoreCli(model(), in2, out2, "--output-format", "json", "--previous", out1.toString());
    assertEquals(0, r.code(), r.err());
    Map<String, JsonObject> rows = byText(out2);
    assertEquals(java.util.Set.of("kept the same", "was edited", "is new"), rows.keySet());
    assertEquals(
        12345.5, rows.get("kept the same").get("ppl_nll").getAsDouble(), "carried over unchanged");
    assertEquals(
        kept.get("ppl_tokens").getAsInt(), rows.get("kept the same").get("ppl_tokens").getAsInt());
    assertEquals("ok", rows.get("was edited").get("ppl_status").getAsString());
    assertNotEquals(12345.5, rows.get("is new").get("ppl_nll").getAsDouble());
    JsonObject prev = summary(out2).getAsJsonObject("previous");
    assertEquals(1, prev.get("carried").getAsLong());
    assertEquals(2, prev.get("scored").getAsLong());

    // keyed by id: the edited row (same id, new text) is scored again; other settings re-score
    // everything
    Path out3 = tmp.resolve("out3");
    assertEquals(
        0,
        scoreCli(
                model(),
                in2,
                out3,
                "--output-format",
                "json",
                "--previous",
                out2.toString(),
                "--id-column",
                "id")
            .code());
    assertEquals(12345.5, byText(out3).get("kept the same").get("ppl_nll").getAsDouble());
    assertEquals(3, summary(out3).getAsJsonObject("previous").get("carried").getAsLong());
    Path out4 = tmp.resolve("out4");
    assertEquals(
        0,
        scoreCli(
                model(),
                in2,
                out4,
                "--output-format",
                "json",
                "--previous",
                out2.toString(),
                "--window",
                "8")
            .code());
    assertEquals(0, summary(out4).getAsJsonObject("previous").get("carried").getAsLong());
    assertNotEquals(12345.5, byText(out4).get("kept the same").get("ppl_nll").getAsDouble());
  }

  static Map<String, JsonObject> byText(Path out) throws Exception {
    Map<String, JsonObject> m = new HashMap<>();
    for (JsonObject r : readJsonLines(out)) {
      assertEquals(null, m.put(r.get("text").getAsString(), r), "every row once");
    }
    return m;
  }
}
