package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import io.olmoppl.job.testing.SparkTestBase;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Column names with a dot (a JSON field {@code my.text}, a CSV header {@code src.name}) are names,
 * not paths into a struct: {@code --text-column}, {@code --group-by} and {@code --id-column} work
 * with them end to end, and a bad {@code --id-column} is refused before scoring.
 */
class ColumnNamesTest extends SparkTestBase {
  @TempDir Path tmp;

  Path input() throws Exception {
    return Files.writeString(
        tmp.resolve("in.jsonl"),
        String.join(
            "\n",
            "{\"doc.id\":1,\"my.text\":\"the first document\",\"src.name\":\"web\",\"meta\":{\"k\":1}}",
            "{\"doc.id\":2,\"my.text\":\"a second one\",\"src.name\":\"web\",\"meta\":{\"k\":2}}",
            "{\"doc.id\":3,\"my.text\":\"and a third\",\"src.name\":\"books\",\"meta\":{\"k\":3}}",
            ""));
  }

  @Test
  void dottedColumnNamesWorkForTextGroupAndId() throws Exception {
    Path in = input();
    Path out = tmp.resolve("out");
    Cli r =
        scoreCli(
            model(),
            in,
            out,
            "--output-format",
            "json",
            "--text-column",
            "my.text",
            "--group-by",
            "src.name");
    assertEquals(0, r.code(), r.err());
    assertTrue(Files.exists(out.resolve(Output.MARKER)));
    Map<String, Long> expected = new TreeMap<>();
    for (JsonObject row : readJsonLines(out)) {
      assertEquals("ok", row.get("ppl_status").getAsString());
      expected.merge(row.get("src.name").getAsString(), 1L, Long::sum);
    }
    assertEquals(Map.of("web", 2L, "books", 1L), expected);
    Map<String, Long> groups = new TreeMap<>();
    for (var g : summary(out).getAsJsonObject("groups").getAsJsonArray("rows")) {
      groups.put(
          g.getAsJsonObject().get("group").getAsString(),
          g.getAsJsonObject().get("documents").getAsLong());
    }
    assertEquals(expected, groups);
    Path out2 = tmp.resolve("out2");
    Cli again =
        scoreCli(
            model(),
            in,
            out2,
            "--text-column",
            "my.text",
            "--previous",
            out.toString(),
            "--id-column",
            "doc.id");
    assertEquals(0, again.code(), again.err());
    assertEquals(3, summary(out2).getAsJsonObject("previous").get("carried").getAsLong());
  }

  @Test
  void aBadIdColumnIsRefusedBeforeScoring() throws Exception {
    Path in = input();
    Path out = tmp.resolve("out");
    Cli first = scoreCli(model(), in, out, "--text-column", "my.text");
    assertEquals(0, first.code(), first.err());
    for (String[] c : new String[][] {{"meta", "scalar"}, {"doc", "not in the input"}}) {
      Path out2 = tmp.resolve("out-" + c[0]);
      Cli r =
          scoreCli(
              model(),
              in,
              out2,
              "--text-column",
              "my.text",
              "--previous",
              out.toString(),
              "--id-column",
              c[0]);
      assertEquals(1, r.code(), r.err());
      assertTrue(r.err().contains("--id-column '" + c[0] + "'") && r.err().contains(c[1]), r.err());
      assertFalse(r.err().contains("\tat "), r.err());
      assertFalse(Files.exists(out2));
    }
  }
}
