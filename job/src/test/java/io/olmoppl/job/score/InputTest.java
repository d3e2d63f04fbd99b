package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.olmoppl.job.testing.SparkTestBase;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Inputs refused before scoring: a directory mixing formats, an empty input. */
class InputTest extends SparkTestBase {
  @TempDir Path tmp;

  @Test
  void mixedDirectoryIsRefusedNamingTheFiles() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("mixed"));
    Files.writeString(dir.resolve("a.jsonl"), "{\"text\":\"one\"}\n");
    Files.writeString(dir.resolve("b.csv"), "text\ntwo\n");
    Files.writeString(dir.resolve("c.txt"), "three\n");
    Path out = tmp.resolve("out");
    Cli r = scoreCli(model(), dir, out);
    assertEquals(1, r.code(), r.err());
    assertTrue(
        r.err().contains("mixes files")
            && r.err().contains("a.jsonl")
            && r.err().contains("b.csv")
            && r.err().contains("c.txt"),
        r.err());
    assertFalse(Files.exists(out));
  }

  @Test
  void emptyInputSaysSo() throws Exception {
    Path in = Files.writeString(tmp.resolve("empty.jsonl"), "");
    Cli r = scoreCli(model(), in, tmp.resolve("out"));
    assertEquals(1, r.code());
    assertTrue(r.err().contains("the input is empty"), r.err());
    assertFalse(r.err().contains("--text-column"), r.err());
  }
}
