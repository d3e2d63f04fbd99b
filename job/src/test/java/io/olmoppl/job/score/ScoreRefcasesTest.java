package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.olmoppl.job.report.ScoreSummary;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.testing.Refcases;
import io.olmoppl.testing.Refcases.Expected;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every reference case through {@code olmo-ppl score} on Spark local[2]: JSON lines in and out,
 * --token-logprobs, each prefix rule, windows (L, L) and (L, L/2) as in the cases.
 */
class ScoreRefcasesTest extends SparkTestBase {
  @TempDir Path tmp;

  static List<String> cases() {
    return Refcases.names();
  }

  @ParameterizedTest
  @MethodSource("cases")
  void scoreReproducesReference(String name) throws Exception {
    List<Expected> all = Refcases.expected(name);
    Map<String, String> texts = new LinkedHashMap<>();
    all.forEach(e -> texts.put(e.key(), e.text()));
    Path input = tmp.resolve("input.jsonl");
    StringBuilder sb = new StringBuilder();
    texts.forEach(
        (k, t) -> {
          JsonObject o = new JsonObject();
          o.addProperty("key", k);
          o.addProperty("text", t);
          sb.append(o).append('\n');
        });
    Files.writeString(input, sb.toString(), StandardCharsets.UTF_8);
    Map<String, List<Expected>> groups =
        all.stream()
            .collect(Collectors.groupingBy(e -> e.window() + "/" + e.stride() + "/" + e.prefix()));
    int run = 0;
    for (List<Expected> group : groups.values()) {
      Expected g = group.get(0);
      // the cases' configs have no BOS, so --bos auto must behave as eos; exercise both spellings
      String bos = g.prefix().equals("none") ? "none" : (run % 2 == 0 ? "eos" : "auto");
      Path out = tmp.resolve("out" + run++);
      ScoreSummary summary =
          score(
              "--model",
              Refcases.dir(name).toString(),
              "--input",
              input.toString(),
              "--output",
              out.toString(),
              "--input-format",
              "json",
              "--output-format",
              "json",
              "--token-logprobs",
              "--bos",
              bos,
              "--window",
              String.valueOf(g.window()),
              "--stride",
              String.valueOf(g.stride()));
      List<JsonObject> rows = readJsonLines(out);
      assertEquals(texts.size(), rows.size(), "one output row per input row");
      Map<String, JsonObject> byKey = new HashMap<>();
      rows.forEach(r -> byKey.put(r.get("key").getAsString(), r));
      double nllSum = 0;
      long tokSum = 0;
      for (Expected e : group) {
        JsonObject r = byKey.get(e.key());
        String where = name + "/" + e.key() + " " + g.window() + "/" + g.stride() + "/" + bos;
        assertEquals(e.nScored(), r.get("ppl_tokens").getAsInt(), where);
        assertEquals(e.windows(), r.get("ppl_windows").getAsInt(), where);
        assertEquals(e.text(), r.get("text").getAsString(), where + ": input column kept");
        if (e.nScored() == 0) {
          assertTrue(
              r.get("perplexity").isJsonNull(), where + ": perplexity null when nothing is scored");
          assertTrue(r.get("bits_per_byte").isJsonNull(), where);
          assertEquals(0.0, r.get("ppl_nll").getAsDouble(), where);
          assertEquals(
              e.text().isEmpty() ? "empty" : "too_short", r.get("ppl_status").getAsString(), where);
        } else {
          assertEquals("ok", r.get("ppl_status").getAsString(), where);
          double mean = r.get("ppl_nll").getAsDouble() / e.nScored();
          assertEquals(e.meanNll(), mean, Refcases.MEAN_NLL_TOL, where + ": mean NLL");
          assertEquals(e.ppl(), r.get("perplexity").getAsDouble(), e.ppl() * 1e-5, where);
          assertEquals(
              e.bitsPerByte(), r.get("bits_per_byte").getAsDouble(), e.bitsPerByte() * 1e-5, where);
          nllSum += r.get("ppl_nll").getAsDouble();
          tokSum += e.nScored();
        }
        JsonArray lps = r.getAsJsonArray("ppl_token_logprobs");
        assertEquals(e.nScored(), lps.size(), where);
        if (e.tokenLogprobs() != null) {
          for (int k = 0; k < lps.size(); k++) {
            assertEquals(
                e.tokenLogprobs()[k],
                lps.get(k).getAsDouble(),
                Refcases.TOKEN_TOL,
                where + " token " + k);
          }
        }
      }
      assertEquals(tokSum, summary.corpus().tokens(), "summary tokens");
      assertEquals(
          Math.exp(nllSum / tokSum),
          summary.corpus().perplexity(),
          1e-6 * Math.exp(nllSum / tokSum));
      assertTrue(Files.exists(out.resolve("_summary.json")));
    }
  }
}
