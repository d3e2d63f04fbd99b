package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.testing.Refcases;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Malformed JSON lines get their own status, or stop the run with {@code --on-malformed fail}. */
class MalformedTest extends SparkTestBase {
  @TempDir Path tmp;

  static String model() {
    return Refcases.dir("p01_olmo_tied_f32").toString();
  }

  Path jsonl(String name, String... lines) throws Exception {
    Path p = tmp.resolve(name);
    Files.writeString(p, String.join("\n", lines) + "\n");
    return p;
  }

  static JsonObject summary(Path out) throws Exception {
    return JsonParser.parseString(Files.readString(out.resolve("_summary.json"))).getAsJsonObject();
  }

  @Test
  void malformedJsonLinesGetTheirOwnStatusOrStopTheRun() throws Exception {
    Path in = jsonl("in.jsonl", "{\"text\":\"good line\"}", "{\"text\": broken", "{\"other\":1}");
    Path out = tmp.resolve("out");
    Cli r =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            in.toString(),
            "--output",
            out.toString(),
            "--output-format",
            "json");
    assertEquals(0, r.code(), r.err());
    Map<String, Integer> byStatus = new HashMap<>();
    for (JsonObject row : readJsonLines(out)) {
      byStatus.merge(row.get("ppl_status").getAsString(), 1, Integer::sum);
    }
    assertEquals(Map.of("ok", 1, "malformed", 1, "null_text", 1), byStatus);
    assertEquals(1, summary(out).getAsJsonObject("status").get("malformed").getAsInt());
    Path out2 = tmp.resolve("out2");
    Cli fail =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            in.toString(),
            "--output",
            out2.toString(),
            "--on-malformed",
            "fail");
    assertEquals(1, fail.code());
    assertTrue(
        fail.err().contains("1 malformed JSON line") && fail.err().contains("broken"), fail.err());
    assertFalse(Files.exists(out2));
  }
}
