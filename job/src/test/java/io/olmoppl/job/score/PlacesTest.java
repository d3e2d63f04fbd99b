package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.olmoppl.job.cli.JobException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Paths compared by what they point to: links, other spellings, nesting either way. */
class PlacesTest {
  @TempDir Path tmp;
  final Configuration conf = new Configuration();

  Places.Place place(String flag, Path p, boolean links) throws Exception {
    return Places.of(conf, flag, p.toString(), links);
  }

  @Test
  void aLinkAndAnotherSpellingAreTheSamePlace() throws Exception {
    Path real = Files.createDirectories(tmp.resolve("data/out"));
    Path link = Files.createSymbolicLink(tmp.resolve("alias"), tmp.resolve("data"));
    String key = place("--output", real, false).key();
    assertEquals(real.toRealPath().toString(), key);
    assertEquals(key, place("--input", link.resolve("out"), false).key());
    assertEquals(key, place("--input", tmp.resolve("data/x/../out"), false).key());
    assertEquals(key, Places.of(conf, "--input", "file:" + real + "/", false).key());
    // a path that does not exist yet: its existing part resolved, the rest as named
    assertEquals(key + "/new/rows", place("--output", link.resolve("out/new/rows"), false).key());
    assertFalse(Places.ignoresCase(real.toRealPath()), "the test file system is case-sensitive");
  }

  @Test
  void everyOverlapRuleComparesWhatThePathsPointTo() throws Exception {
    Path out = Files.createDirectories(tmp.resolve("out"));
    Path alias = Files.createSymbolicLink(tmp.resolve("alias"), out);
    Path inputDir = Files.createDirectories(tmp.resolve("in"));
    Files.writeString(inputDir.resolve("a.jsonl"), "{}\n");
    Places.Place output = place("--output", out, false);
    // the output inside the input, the input inside the output (through a link), a link in the
    // input
    for (Path read : List.of(tmp, alias.resolve("part-0.json"), inputDir)) {
      if (read.equals(inputDir)) {
        Files.createSymbolicLink(inputDir.resolve("b.jsonl"), out.resolve("part-0.json"));
      }
      JobException e =
          assertThrows(
              JobException.class,
              () -> Places.refuseOverlaps(List.of(place("--input", read, true)), List.of(output)));
      assertTrue(
          e.getMessage().startsWith("--output " + out + " overlaps --input " + read),
          e.getMessage());
    }
    // a sibling whose name starts alike is another place
    Places.refuseOverlaps(List.of(place("--input", tmp.resolve("out-2"), true)), List.of(output));
    JobException nested =
        assertThrows(
            JobException.class,
            () ->
                Places.refuseOverlaps(
                    List.of(),
                    List.of(output, place("--rejected", alias.resolve("rejected"), false))));
    assertTrue(
        nested
            .getMessage()
            .contains("--rejected " + alias.resolve("rejected") + " is inside --output"),
        nested.getMessage());
  }
}
