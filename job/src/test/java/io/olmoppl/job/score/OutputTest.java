package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.olmoppl.job.cli.Args;
import io.olmoppl.job.testing.SparkTestBase;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The output: an unwritable one is found before scoring; it is marked complete last (an output
 * without the marker reads as incomplete), and {@code --mode} decides about an existing one.
 */
class OutputTest extends SparkTestBase {
  @TempDir Path tmp;

  @Test
  void unwritableOutputIsFoundBeforeScoring() throws Exception {
    Path file = Files.writeString(tmp.resolve("plain-file"), "x");
    Cli r =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            jsonl(tmp.resolve("in.jsonl"), "{\"text\":\"a b c\"}").toString(),
            "--output",
            file.resolve("out").toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(
        r.err().contains("cannot be written") && r.err().contains("before any scoring"), r.err());
    assertTrue(r.err().lines().count() <= 3, "no trace: " + r.err());
  }

  @Test
  void outputIsMarkedCompleteLastAndModeDecidesAboutAnExistingOne() throws Exception {
    Path in = jsonl(tmp.resolve("in.jsonl"), "{\"text\":\"alpha beta\"}", "{\"text\":\"gamma\"}");
    // the rows alone, as a crash right after writing them would leave them: no success marker
    Path rowsOnly = tmp.resolve("rows-only");
    Request req =
        Request.from(
            Args.parse(
                "score",
                new String[] {
                  "score",
                  "--model",
                  model(),
                  "--input",
                  in.toString(),
                  "--output",
                  rowsOnly.toString(),
                  "--output-format",
                  "json"
                },
                1,
                ScoreCommand.OPTIONS,
                ScoreCommand.FLAGS));
    Formats.write(spark.read().json(in.toString()), req, req.output());
    assertTrue(Files.exists(rowsOnly.resolve("part-00000-" + "x").getParent()));
    assertFalse(
        Files.exists(rowsOnly.resolve(Output.MARKER)),
        "rows without the summary do not look complete");
    Cli again = scoreCli(model(), in, rowsOnly);
    assertEquals(1, again.code());
    assertTrue(
        again.err().contains("already exists")
            && again.err().contains("did not finish")
            && again.err().contains("--mode overwrite"),
        again.err());

    Cli overwrite =
        scoreCli(model(), in, rowsOnly, "--mode", "overwrite", "--output-format", "json");
    assertEquals(0, overwrite.code(), overwrite.err());
    assertTrue(
        Files.exists(rowsOnly.resolve("_summary.json"))
            && Files.exists(rowsOnly.resolve(Output.MARKER)));
    assertTrue(
        Files.getLastModifiedTime(rowsOnly.resolve(Output.MARKER))
                .compareTo(Files.getLastModifiedTime(rowsOnly.resolve("_summary.json")))
            >= 0,
        "the marker comes last");
    assertEquals(2, readJsonLines(rowsOnly).size());

    Cli overInput = scoreCli(model(), in, in, "--mode", "overwrite");
    assertEquals(1, overInput.code());
    assertTrue(overInput.err().contains("overlaps"), overInput.err());
    assertTrue(Files.exists(in), "the input is never removed");
    Cli badMode =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            in.toString(),
            "--output",
            "x",
            "--mode",
            "append");
    assertEquals(2, badMode.code());
  }
}
