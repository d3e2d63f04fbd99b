package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import io.olmoppl.job.testing.SparkTestBase;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Malformed JSON lines get their own status, or stop the run with {@code --on-malformed fail}. */
class MalformedTest extends SparkTestBase {
  @TempDir Path tmp;

  @Test
  void malformedJsonLinesGetTheirOwnStatusOrStopTheRun() throws Exception {
    Path in =
        jsonl(
            tmp.resolve("in.jsonl"),
            "{\"text\":\"good line\"}",
            "{\"text\": broken",
            "{\"other\":1}");
    Path out = tmp.resolve("out");
    Cli r = scoreCli(model(), in, out, "--output-format", "json");
    assertEquals(0, r.code(), r.err());
    Map<String, Integer> byStatus = new HashMap<>();
    for (JsonObject row : readJsonLines(out)) {
      byStatus.merge(row.get("ppl_status").getAsString(), 1, Integer::sum);
    }
    assertEquals(Map.of("ok", 1, "malformed", 1, "null_text", 1), byStatus);
    assertEquals(1, summary(out).getAsJsonObject("status").get("malformed").getAsInt());
    Path out2 = tmp.resolve("out2");
    Cli fail = scoreCli(model(), in, out2, "--on-malformed", "fail");
    assertEquals(1, fail.code());
    assertTrue(
        fail.err().contains("1 malformed JSON line") && fail.err().contains("broken"), fail.err());
    assertFalse(Files.exists(out2));
  }
}
